"""The service mock base: one request pipeline for every service.

``parse`` (service) → journal ``request`` → rule engine ``decide`` (rules whose applier is the mock)
→ effect (delay, hang, reset, protocol error via ``fault_reply``, raw status/body, partial body) or
``handle`` (service) → journal ``response`` → socket. A service subclass implements only its protocol.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ValidationError

from harness.faults import Applier, Effect, RuleEngine
from harness.faults.rules import format_validation_error, scaled_s
from harness.journal import Journal, kinds
from mocks.base import effects
from mocks.base.callbacks import CallbackSender, Outbound
from mocks.base.reply import BadRequest, Call, Reply, shape_reply

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
        self.callbacks = CallbackSender(ctx, self.name, forge=self.forge_callback)

    # --- to implement ----------------------------------------------------------------------
    def routes(self) -> list[str]:
        """Paths served; every method on each is dispatched through the pipeline."""
        return ["/{tail:.*}"]

    async def parse(self, request: web.Request) -> Call:
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
        await self.callbacks.close()

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
    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        for path in self.routes():
            app.router.add_route("*", path, self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        response = await self._dispatch(request)
        if request.content.exception() is not None:
            # the body was unreadable: close after answering instead of letting aiohttp drain it
            response.force_close()
            request.content.feed_eof()
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        rid = f"{self.name[:2]}{next(self._rids)}"
        try:
            call = await self.parse(request)
        except BadRequest as bad:
            self._journal_request(rid, bad.action, request, {})
            return self._send(rid, bad.action, bad.reply, None)
        except (web.RequestPayloadError, aiohttp.ClientPayloadError, ValueError, UnicodeError) as e:
            # a body aiohttp cannot read (bad Content-Encoding, truncated chunks …): never a 500
            self._journal_request(rid, "malformed", request, {"error": f"{type(e).__name__}: {e}"[:200]})
            return self._send(rid, "malformed", self.malformed_reply(e), None)
        call.rid = rid
        self._journal_request(rid, call.action, request, call.params)
        decision = self.ctx.engine.decide(self.name, call.action, call.params, ref=rid, applier=Applier.MOCK)
        if decision is None:
            return self._send(rid, call.action, await self.handle(call), None)
        effect, rule = decision.effect, decision.rule_id
        if effect.delay_ms:
            await asyncio.sleep(scaled_s(effect.delay_ms, self.ctx.time_scale))
        if effect.hang:
            waited = await effects.hang(request, self.ctx.hang_limit_s)
            self._journal_outcome(rid, call.action, rule, "hang", hung_s=round(waited, 3))
            raise asyncio.CancelledError()  # aiohttp closes the connection without an answer
        if effect.reset:
            effects.reset(request)
            self._journal_outcome(rid, call.action, rule, "reset")
            raise asyncio.CancelledError()
        reply = shape_reply(effect, call, self.fault_reply) if effect.shapes_response else await self.handle(call)
        if effect.partial_body is not None and effect.partial_body is not False:
            headers = dict(reply.headers)
            sent = await effects.partial(request, reply.status, reply.content_type, headers, reply.body,
                                         effect.partial_body)
            self._journal_outcome(rid, call.action, rule, "partial", status=reply.status, sent_bytes=sent,
                                  full_bytes=len(reply.body))
            raise asyncio.CancelledError()
        return self._send(rid, call.action, reply, rule)

    def _send(self, rid: str, action: str, reply: Reply, rule: str | None) -> web.Response:
        data = reply.data
        if data is None or (isinstance(data, str) and len(data) > JOURNAL_BODY_LIMIT):
            data = reply.body[:JOURNAL_BODY_LIMIT].decode("utf-8", "replace")
        refused = {"refused": reply.refused} if reply.refused else {}
        self.ctx.record(kinds.RESPONSE.event(service=self.name, action=action, rid=rid, status=reply.status,
                                             rule=rule, body=data, **refused))
        if reply.refused:  # `harness serve` logs one line per refusal
            log.info("%s %s %s refused: %s", self.name, rid, action, reply.refused.get("why"))
        return reply.to_response()

    def _journal_request(self, rid: str, action: str, request: web.Request, params: dict[str, Any]) -> None:
        self.ctx.record(kinds.REQUEST.event(service=self.name, action=action, rid=rid, method=request.method,
                                            path=request.path, params=params, peer=request.remote))

    def _journal_outcome(self, rid: str, action: str, rule: str, outcome: str, **more: Any) -> None:
        self.ctx.record(kinds.RESPONSE.event(**{"service": self.name, "action": action, "rid": rid, "status": None,
                                                "rule": rule, "outcome": outcome, **more}))  # more may set status

