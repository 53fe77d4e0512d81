"""The Tencent Chat (IM) server-side mock: REST API ``POST /v4/<servicename>/<command>``, UserSig
checks, per-command request-rate limits with the ``Alert.RequestOverLimit`` alarm, and webhooks.

Order of checks for a REST call (each failure is HTTP 200 with ``ActionStatus: FAIL``):
method is POST (60002) → body is a JSON object (60003) → ``sdkappid`` present (60012) and ours
(60006) → ``identifier`` and ``usersig`` present (60004) → UserSig valid (700xx) → identifier is
an admin (60010) → the command exists (60009) → app-wide rate (60011, off by default) →
per-command rate (60007) → the command's own checks.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import orjson
from aiohttp import web

from harness.faults import Effect
from mocks.base import BadRequest, Call, Outbound, Reply, ServiceMock, refusal
from mocks.base.http import BodyError, BodyTooLarge, Request
from mocks.chat import webhooks
from mocks.chat.commands import COMMANDS, Caller
from mocks.chat.config import ChatConfig
from mocks.chat.control import control_routes, openapi_paths
from mocks.chat.events import RATE_ALARM, WEBHOOK_ANSWER
from mocks.chat.errors import code_for, resolve_error, rest_reply
from mocks.chat.ratelimit import Debounce, SlidingWindow
from mocks.chat.state import ChatState
from mocks.chat.usersig import explain as explain_usersig
from mocks.chat.usersig import verify_usersig
from mocks.chat.vocabulary import ALARM_COMMAND, ALARM_LIMIT, ALARM_SERVICE, OVERLIMIT_ALARM, SERVICE

_PATH = re.compile(r"^/v4/([A-Za-z0-9_]+)/([A-Za-z0-9_]+)/?$")
_QUERY_FIELDS = ("sdkappid", "identifier", "usersig", "random", "contenttype")


class ChatMock(ServiceMock):
    name = SERVICE
    Config = ChatConfig
    config: ChatConfig

    def __init__(self, ctx: Any, config: dict[str, Any] | None = None):
        super().__init__(ctx, config)
        self.state = ChatState(seed=ctx.seed)
        self.rates = SlidingWindow()
        self.alarms = Debounce()
        self._request_ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()

    # --- parsing -----------------------------------------------------------------------------
    async def parse(self, request: Request) -> Call:
        m = _PATH.match(request.path)
        if m is None:
            # outside /v4/<service>/<command>: a 404 page, like any unknown path on a web server
            raise BadRequest(Reply.text("404 Not Found", status=404, content_type="text/html"),
                             action="not_found")
        action = f"{m.group(1)}/{m.group(2)}"
        query = {k: request.query[k] for k in request.query}
        body: Any = {}
        problem = None
        try:
            raw = await request.read()
        except (BodyError, BodyTooLarge):  # e.g. a body that does not match its Content-Encoding
            raw, problem = b"", "http_parse"  # answered, then the connection is closed
        if request.method != "POST":
            problem = "http_parse"
        elif problem is None and raw.strip():
            try:
                body = orjson.loads(raw)
            except ValueError:
                problem = "json_parse"
            if not isinstance(body, dict):
                problem, body = "json_parse", {}
        params = {**body, **{k: query[k] for k in query}}
        call = Call(action, params, request)
        call.extra.update(body=body, query=query, problem=problem)
        return call

    # --- answering ---------------------------------------------------------------------------
    def next_request_id(self) -> str | None:
        if not self.config.request_id:
            return None
        n = next(self._request_ids)
        return f"Id-{self.state.rng.getrandbits(128):032x}-O-Seq-{n}"

    def _fail(self, name: str, rid: str | None, refused: dict[str, str] | None = None) -> Reply:
        code, info = code_for(name, self.config.error_codes)
        reply = rest_reply(code, info, rid)
        reply.refused = refused
        return reply

    def _rate_limited(self, name: str, rid: str | None, what: str, limit: Any, observed: Any) -> Reply:
        """Over a rate limit: an ordinary answer (not logged as a refused request), journaled with
        ``refused`` so that readers know the command took no effect."""
        reply = self._fail(name, rid, refusal(f"{what} per second", f"at most {limit}", "more",
                                              f"{observed} in the last second"))
        reply.refusal_is_answer = True
        return reply

    async def handle(self, call: Call) -> Reply:
        cfg = self.config
        rid = self.next_request_id()
        if call.extra.get("problem"):
            return self._fail(call.extra["problem"], rid)
        q: dict[str, str] = call.extra["query"]
        sdkappid = q.get("sdkappid", "")
        if not sdkappid:
            return self._fail("sdkappid_missing", rid)
        if sdkappid.strip() != str(cfg.sdkappid):
            return self._fail("sdkappid_invalid", rid, refusal("sdkappid query parameter", str(cfg.sdkappid), sdkappid))
        identifier, usersig = q.get("identifier", ""), q.get("usersig", "")
        if not identifier or not usersig:
            return self._fail("account_or_sig", rid)
        problem = verify_usersig(usersig, sdkappid=cfg.sdkappid, identifier=identifier, key=cfg.secret_key)
        if problem is not None:
            return self._fail(problem, rid, explain_usersig(problem, usersig, sdkappid=cfg.sdkappid,
                                                            identifier=identifier, key=cfg.secret_key))
        if identifier not in cfg.admins:
            return self._fail("admin_required", rid, refusal("identifier", " or ".join(sorted(cfg.admins)) +
                                                             " (an app administrator)", identifier))
        handler = COMMANDS.get(call.action)
        if handler is None:
            return self._fail("bad_resource", rid)
        client_ip = call.request.remote or "127.0.0.1"
        if cfg.app_qps_limit is not None:
            admitted, observed = self.rates.hit("*", cfg.app_qps_limit)
            if not admitted:
                return self._rate_limited("app_rate_limit", rid, "requests of the app", cfg.app_qps_limit, observed)
        limit = cfg.limit_for(call.action)
        admitted, observed = self.rates.hit(call.action, limit)
        if limit is not None and observed > cfg.alarm_threshold * limit:
            self._alarm(call.action, observed, limit, client_ip)
        if not admitted:
            return self._rate_limited("command_rate_limit", rid, call.action, limit, observed)
        return await handler(self, call, call.extra["body"], Caller(identifier, client_ip, rid))

    def fault_reply(self, effect: Effect, call: Call) -> Reply | None:
        if effect.error is None:
            return None
        resolved = resolve_error(effect.error, self.config.error_codes)
        code, info = resolved if resolved is not None else code_for("internal")
        if effect.message is not None:
            info = effect.message
        elif resolved is None:
            info = f"{effect.error}: {info}"
        return rest_reply(code, info, self.next_request_id())

    # --- the rate alarm ----------------------------------------------------------------------
    def _alarm(self, command_key: str, observed: int, limit: int, client_ip: str) -> None:
        cfg = self.config
        if not self.alarms.due(command_key, cfg.alarm_interval_s):
            return
        service, command = command_key.split("/", 1)
        self._track(self._send_alarm(service, command, observed, limit, client_ip))

    async def _send_alarm(self, service: str, command: str, observed: int, limit: int, client_ip: str) -> None:
        cfg = self.config
        if cfg.alarm_aggregate_s > 0:
            peak = observed
            loop = asyncio.get_running_loop()
            end = loop.time() + cfg.alarm_aggregate_s * self.ctx.time_scale
            while loop.time() < end:
                await asyncio.sleep(min(0.05, max(0.0, end - loop.time())))
                peak = max(peak, self.rates.observed(f"{service}/{command}"))
            observed = peak
        body = {ALARM_SERVICE: service, ALARM_COMMAND: command, "Request": observed, ALARM_LIMIT: limit}
        sent = self.config.callback_on(OVERLIMIT_ALARM)
        self.ctx.record(RATE_ALARM.event(service=self.name, action=OVERLIMIT_ALARM, ServiceName=service,
                                         Command=command, Request=observed, Limit=limit, sent=sent))
        if sent:
            await self.webhook(OVERLIMIT_ALARM, body, client_ip=client_ip, platform="RESTAPI")

    # --- webhooks ----------------------------------------------------------------------------
    async def webhook(self, command: str, body: dict[str, Any], *, client_ip: str | None = "127.0.0.1",
                      platform: str | None = "RESTAPI", url_extra: dict[str, str] | None = None,
                      ref: str | None = None) -> webhooks.Answer:
        """Send one callback now (through the callback rules), read and journal the app's answer."""
        cfg = self.config
        out = webhooks.outbound(cfg, command, body, client_ip=client_ip, platform=platform, url_extra=url_extra)
        if not out.url:
            answer = webhooks.Answer(False, "no_webhook_url")
            self._journal_answer(out, answer, ref)
            return answer
        before = webhooks.is_before(command)
        retries = 0 if before else cfg.after_callback_retries_on_timeout
        attempts = await self.callbacks.send(out, retries=retries, retry_on=("timeout",))
        answer = webhooks.read_answer(attempts)
        self._journal_answer(out, answer, ref)
        return answer

    def spawn_webhook(self, command: str, body: dict[str, Any], **kw: Any) -> None:
        self._track(self.webhook(command, body, **kw))

    def _journal_answer(self, out: Outbound, answer: webhooks.Answer, ref: str | None) -> None:
        event = WEBHOOK_ANSWER.event(service=self.name, action=out.action, cid=out.cid or None, ref=ref,
                                     **answer.public())
        if webhooks.is_before(out.action):
            event["verdict"] = webhooks.before_verdict(answer, self.config.before_send_on_failure).action
        self.ctx.record(event)

    def forge_callback(self, out: Outbound, kind: str, effect: Effect) -> Outbound:
        return webhooks.forge(self.config, out, kind, effect)

    def _track(self, coro: Any) -> None:
        if self._stopped:   # a handler finishing while the mock stops: nothing may outlive the journal
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- lifecycle / control -----------------------------------------------------------------
    def control_routes(self) -> list[web.RouteDef]:
        return control_routes(self)

    def openapi_paths(self) -> dict[str, Any]:
        return openapi_paths()

    def reset_state(self) -> None:
        self.state = ChatState(seed=self.ctx.seed)
        self.rates.clear()
        self.alarms.clear()

    async def drain(self, timeout: float) -> int:
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        return sum(not t.done() for t in pending) + await super().drain(timeout)

    async def stop(self) -> None:
        await self.cancel_handlers()   # first: no handler may spawn a webhook after the tasks are cancelled
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().stop()
