"""The service mock base: one request pipeline for every service.

``parse`` (service) → journal ``request`` → rule engine ``decide`` (rules whose applier is the mock)
→ effect (delay, hang, reset, protocol error via ``fault_reply``, raw status/body, partial body) or
``handle`` (service) → journal ``response`` → socket. A service subclass implements only its protocol.

Every ``response`` event says what reached the wire (``outcome``): ``delivered``, ``client_gone``
(the peer closed before the answer was written: nothing was sent), ``reset``, ``partial`` (with
``sent_bytes``), ``hung``. A delayed answer the client resets the connection on at once (it gave up
as the answer arrived, and closed with it unread) becomes ``client_gone`` too. It is written just before the bytes go out; where the outcome is only
known afterwards (a hang's length, a write the peer cut off) a second ``response`` event for the same
``rid`` follows at once, and readers take the last. A delay ends early when its client leaves.
Stopping the mock cancels its handlers: nothing is journaled after a stop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from harness.faults import Applier, Effect, RuleEngine
from harness.faults.rules import format_validation_error, scaled_s
from harness.journal import Journal, kinds
from harness.journal.writer import json_safe
from harness.journal.kinds import CLIENT_GONE, DELIVERED, HUNG, PARTIAL, RESET, VIA_HEADER
from mocks.base import effects
from mocks.base.callbacks import CallbackSender, Outbound
from mocks.base.http import BodyTooLarge, Request, render
from mocks.base.reply import BadRequest, Call, Reply, shape_reply
from mocks.base.server import NoAnswer

JOURNAL_BODY_LIMIT = 4096
log = logging.getLogger("harness.mocks")


@dataclass
class MockContext:
    engine: RuleEngine
    journal: Journal
    seed: int = 0
    hang_limit_s: float = 300.0
    time_scale: float = 1.0
    urls: dict[str, str] = field(default_factory=dict)  # filled by the host once listening
    tls_ca: str | None = None

    def record(self, event: dict[str, Any]) -> int:
        return self.journal.write(event)


class ServiceMock:
    """Subclass per service: set ``name``, ``Config``, implement ``parse``, ``handle``, ``fault_reply``."""

    name: ClassVar[str] = "service"
    Config: ClassVar[type[BaseModel]] = BaseModel

    def __init__(self, ctx: MockContext, config: dict[str, Any] | None = None):
        self.ctx = ctx
        self.config = self._validated(config or {}, config or {})
        self._defaults = self.config
        self._rids = itertools.count(1)
        self._rid_prefix = self.name[:2]
        self._handlers: set[asyncio.Task] = set()
        self._stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_due = False
        self.callbacks = CallbackSender(ctx, self.name, forge=self.forge_callback)

    # --- to implement ----------------------------------------------------------------------
    async def parse(self, request: Request) -> Call:
        raise NotImplementedError

    async def handle(self, call: Call) -> Reply:
        raise NotImplementedError

    def fault_reply(self, effect: Effect, call: Call) -> Reply | None:
        """Translate ``effect.error`` / ``effect.captcha_code`` into this protocol's answer."""
        return None

    def malformed_reply(self, error: Exception) -> Reply:
        """The answer to a request whose body cannot be read at all; services give their real shape."""
        return Reply.text("Bad Request", status=400)

    def forge_callback(self, out: Outbound, kind: str, effect: Effect) -> Outbound:
        """Rewrite an outbound callback for a forgery fault (``wrong_id``, ``bad_sign`` …)."""
        raise ValueError(f"{self.name} cannot forge a callback as {kind!r}")

    def control_routes(self) -> list[web.RouteDef]:
        """Extra control-API routes under ``/<name>/…`` (config routes are added by the base)."""
        return []

    def openapi_paths(self) -> dict[str, Any]:
        return {}

    def reset_state(self) -> None:
        """Forget service state (tickets, tasks, counters). Config goes back to its start value."""

    async def start(self) -> None:
        """Called once listening (background tasks may start here)."""

    async def drain(self, timeout: float) -> int:
        """Wait (bounded) for outbound work in flight; returns how much was left unfinished."""
        return await self.callbacks.drain(timeout)

    async def stop(self) -> None:
        await self.cancel_handlers()
        await self.callbacks.close()

    async def cancel_handlers(self) -> None:
        """Cancel the requests being handled (a delay, a hang, a slow ``handle``) and refuse new ones,
        so that no handler outlives the mock and writes to a closed journal."""
        self._stopped = True
        tasks = [t for t in self._handlers if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    # --- config ----------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def update_config(self, patch: dict[str, Any]) -> dict[str, Any]:
        self.config = self._validated({**self.config.model_dump(), **patch}, patch)
        return self.config_dict()

    def _validated(self, values: dict[str, Any], given: dict[str, Any]) -> BaseModel:
        """One-line ``ValueError`` naming the field; a key that ``Config`` lacks is refused by name."""
        for key in given:
            if key not in self.Config.model_fields:
                raise ValueError(f"{self.name}.config.{key}: no such config key")
        try:
            return self.Config.model_validate(values)
        except ValidationError as e:
            raise ValueError(format_validation_error(e, f"{self.name}.config")) from None

    def reset(self) -> None:
        self.config = self._defaults
        self.reset_state()

    # --- the pipeline ----------------------------------------------------------------------
    async def serve(self, request: Request) -> bytes | None:
        """The server's handler (``mocks/base/server.py``) around ``dispatch``: tracks the handler (a
        stop cancels it), renders the answer, and watches a late one for a client that never read it."""
        if self._stopped:
            return None  # the mock is stopping: close without an answer
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(self._loop)  # given the loop: get_running_loop() costs a getpid()
        self._handlers.add(task)  # type: ignore[arg-type]
        try:
            reply = await self.dispatch(request)
        finally:
            self._handlers.discard(task)  # type: ignore[arg-type]
        data = render(reply.status, reply.content_type, reply.headers, reply.body, request,
                      close=request.body_error is not None)  # an unreadable body: close after answering
        request.undelivered = self._undelivered  # the server calls it if the client left before the answer
        if request.late:
            effects.on_unread(request, lambda: self._undelivered(request))
        return data

    def _undelivered(self, request: Request) -> None:
        """The answer journaled as delivered never reached the client: say so (readers take the last)."""
        if not self._stopped and request.answer is not None:
            self._journal_outcome(*request.answer, CLIENT_GONE)

    async def dispatch(self, request: Request) -> Reply:
        """The answer to ``request``, journaled before it is returned; a service may add to it here."""
        rid = f"{self._rid_prefix}{next(self._rids)}"
        try:
            call = await self.parse(request)
        except BadRequest as bad:
            self._journal_request(rid, bad.action, request, {})
            return self._send(request, rid, bad.action, bad.reply, None)
        except BodyTooLarge as e:
            self._journal_request(rid, "malformed", request, {"error": str(e)})
            return self._send(request, rid, "malformed", Reply.text("Request Entity Too Large", status=413), None)
        except (ValueError, UnicodeError) as e:  # a body that cannot be read (bad Content-Encoding …): never a 500
            self._journal_request(rid, "malformed", request, {"error": f"{type(e).__name__}: {e}"[:200]})
            return self._send(request, rid, "malformed", self.malformed_reply(e), None)
        call.rid = rid
        self._journal_request(rid, call.action, request, call.params)
        decision = self.ctx.engine.decide(self.name, call.action, call.params, ref=rid, applier=Applier.MOCK,
                                          held=True)
        if decision is None:
            return self._send(request, rid, call.action, await self.handle(call), None)
        effect, rule = decision.effect, decision.rule_id
        if effect.delay_ms:
            request.late = True
            if not await effects.sleep_unless_gone(request, scaled_s(effect.delay_ms, self.ctx.time_scale)):
                self._gone(rid, call.action, rule)
        if effect.hang:
            if effects.client_gone(request):
                self._gone(rid, call.action, rule)
            waited = await effects.hang(request, self.ctx.hang_limit_s)
            self._journal_outcome(rid, call.action, rule, HUNG, hung_s=round(waited, 3))
            raise NoAnswer()
        if effect.reset:
            if effects.client_gone(request):
                self._gone(rid, call.action, rule)
            self._journal_outcome(rid, call.action, rule, RESET)
            effects.reset(request)
            raise NoAnswer()
        reply = shape_reply(effect, call, self.fault_reply) if effect.shapes_response else await self.handle(call)
        if effect.partial_body is not None and effect.partial_body is not False:
            await self._send_partial(request, rid, call.action, rule, reply, effect.partial_body)
        return self._send(request, rid, call.action, reply, rule)

    async def _send_partial(self, request: Request, rid: str, action: str, rule: str, reply: Reply,
                            keep: int | bool) -> None:
        if effects.client_gone(request):
            self._gone(rid, action, rule)
        n = effects.partial_length(reply.body, keep)
        self._journal_outcome(rid, action, rule, PARTIAL, status=reply.status, sent_bytes=n,
                              full_bytes=len(reply.body))
        try:
            await effects.partial(request, reply.status, reply.content_type, dict(reply.headers), reply.body, n)
        except ConnectionError:
            self._journal_outcome(rid, action, rule, CLIENT_GONE)
        raise NoAnswer()

    def _gone(self, rid: str, action: str, rule: str | None) -> None:
        """The client closed before its answer was written: journal that, send nothing."""
        self._journal_outcome(rid, action, rule, CLIENT_GONE)
        raise NoAnswer()

    def _send(self, request: Request, rid: str, action: str, reply: Reply, rule: str | None) -> Reply:
        if effects.client_gone(request) or (request.late and effects.peer_closed(request)):
            self._gone(rid, action, rule)
        data = reply.data
        if data is None or (isinstance(data, str) and len(data) > JOURNAL_BODY_LIMIT):
            data = reply.body[:JOURNAL_BODY_LIMIT].decode("utf-8", "replace")
        refused = {"refused": reply.refused} if reply.refused else {}
        # held: written with the other answers of this loop turn, before any of them is sent (server.py)
        self.ctx.journal.hold(kinds.RESPONSE.event(service=self.name, action=action, rid=rid, status=reply.status,
                                                   rule=rule, body=data, outcome=DELIVERED, **refused))
        request.answer = (rid, action, rule)
        if reply.refused and not reply.refusal_is_answer:  # `harness serve` logs one line per refused request
            log.info("%s %s %s refused: %s", self.name, rid, json_safe(action), reply.refused.get("why"))
        return reply

    def _journal_request(self, rid: str, action: str, request: Request, params: dict[str, Any]) -> None:
        # held until the next event (usually the answer: one write(2) for the pair); flushed at the
        # next loop turn at the latest, for a handler that awaits
        via = request.headers.get(VIA_HEADER)
        event = kinds.REQUEST.event(service=self.name, action=action, rid=rid, method=request.method,
                                    path=request.path, params=params, peer=request.remote)
        if via is not None:
            event["via"] = via
        self.ctx.journal.hold(event)
        if not self._flush_due:  # one flush per loop turn, however many requests it parsed
            self._flush_due = True
            self._loop.call_soon(self._flush_held)  # type: ignore[union-attr]

    def _flush_held(self) -> None:
        self._flush_due = False
        self.ctx.journal.flush()

    def _journal_outcome(self, rid: str, action: str, rule: str | None, outcome: str, **more: Any) -> None:
        self.ctx.record(kinds.RESPONSE.event(**{"service": self.name, "action": action, "rid": rid, "status": None,
                                                "rule": rule, "outcome": outcome, **more}))  # more may set status
