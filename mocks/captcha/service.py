"""The Tencent Cloud Captcha mock: API 3.0 ``POST /`` (DescribeCaptchaResult, DescribeCaptchaMiniResult)
with TC3 signature checks, a ticket registry fed by the control API and by a ``TCaptcha.js``
stand-in, and faults from the shared rules. Protocol facts: ``protocols.md`` section 1.

Routes on the mock port (each one journaled and subject to rules, by action name):

==========================  ========================================================================
``POST /`` (or ``GET /``)   action = ``X-TC-Action`` (e.g. ``DescribeCaptchaResult``), params = body
``GET /TCaptcha.js``        action ``TCaptcha.js``: the loader script (``frontend.py``)
``GET|POST /ticket``        action ``ticket``: the loader's "user solved it" request (``aid=<appid>``)
==========================  ========================================================================
"""

from __future__ import annotations

import random
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.faults import Effect
from harness.faults.rules import format_validation_error
from mocks.base import BadRequest, Call, Reply, ServiceMock, refusal
from mocks.base.http import Request
from mocks.captcha import answers, signature
from mocks.captcha.config import DEFAULT_APP_ID, CaptchaConfig
from mocks.captcha.events import TICKET
from mocks.captcha.frontend import loader_script
from mocks.captcha.tickets import TicketStore
from mocks.captcha.verification import ACTIONS, MINI, ApiError, check_params, verify
from mocks.captcha.vocabulary import NO_ACTION, SCRIPT_ACTION, SERVICE, TICKET_ACTION

# the variant and version bits uuid.UUID(int=..., version=4) sets
_UUID4_CLEAR = ~((0xc000 << 48) | (0xf000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type", "Cache-Control": "no-store"}


class IssueTicket(BaseModel):
    """Body of ``POST {control}/captcha/tickets`` (all optional)."""

    model_config = ConfigDict(extra="forbid")
    appid: int | None = Field(None, description="CaptchaAppId (default: the first configured app)")
    evil_level: int = Field(0, ge=0, le=100, description="EvilLevel on success: 0, or 100 = suspicious")
    suspicious: bool = Field(False, description="shorthand for evil_level 100")
    user_ip: str | None = None
    age_s: float = Field(0, ge=0, description="backdate the ticket (age_s > ticket_lifetime_s = expired)")


class CaptchaMock(ServiceMock):
    name = SERVICE
    Config = CaptchaConfig
    config: CaptchaConfig

    def __init__(self, ctx: Any, config: dict[str, Any] | None = None):
        super().__init__(ctx, config)
        self.tickets = TicketStore(ctx.seed, self.config.max_tickets)
        self.reset_state()

    def reset_state(self) -> None:
        self.tickets.clear()
        self._ids = random.Random(f"captcha-requestid|{self.ctx.seed}")
        self._window = (0.0, 0)

    def malformed_reply(self, error: Exception) -> Reply:
        """An unreadable body (bad Content-Encoding, cut-off chunks): the API's InvalidParameter shape."""
        return answers.error_reply("InvalidParameter", "The request body could not be read.", self._request_id())

    def _request_id(self) -> str:
        """A version-4 UUID from the seeded generator (``str(uuid.UUID(int=bits, version=4))``, spelt out)."""
        n = self._ids.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET
        h = "%032x" % n
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    async def dispatch(self, request: Request) -> Reply:
        reply = await super().dispatch(request)
        if request.path == "/ticket":
            # the loader calls /ticket cross-origin: keep it readable even for rule-shaped answers
            for k, v in CORS.items():
                reply.headers.setdefault(k, v)
        return reply

    # --- parse -------------------------------------------------------------------------------
    async def parse(self, request: Request) -> Call:
        path = request.path
        if path != "/":
            if path.lower() == "/tcaptcha.js":
                return Call(SCRIPT_ACTION, dict(request.query), request, extra={"kind": "script"})
            if path == "/ticket":
                params: dict[str, Any] = dict(request.query)
                if request.method == "POST":
                    params.update(_body_params(await request.read(), request.content_type) or {})
                return Call(TICKET_ACTION, params, request, extra={"kind": "ticket"})
            raise BadRequest(Reply.text("404 page not found\n", status=404), action="not_found")
        action = request.headers.get("X-TC-Action", "").strip() or NO_ACTION
        raw = await request.read()
        extra: dict[str, Any] = {"kind": "api", "raw": raw}
        params = {}
        if request.method == "GET":
            params = dict(request.query)
        elif request.method == "POST":
            parsed = _body_params(raw, request.content_type)
            if parsed is None:
                extra["error"] = ("InvalidParameter", "The request body is not a valid JSON object.")
            else:
                params = parsed
        else:
            extra["error"] = ("UnsupportedProtocol",
                              f"HTTP(S) request method `{request.method}` is not supported; use GET or POST.")
        return Call(action, params, request, extra=extra)

    # --- handle ------------------------------------------------------------------------------
    async def handle(self, call: Call) -> Reply:
        kind = call.extra.get("kind")
        if kind == "script":
            return self._script(call)
        if kind == "ticket":
            return self._frontend_ticket(call)
        rid = self._request_id()
        try:
            return self._api(call, rid)
        except (ApiError, signature.SignatureError) as e:
            return answers.error_reply(e.code, e.message, rid, refused=e.why)

    def _api(self, call: Call, rid: str) -> Reply:
        cfg, request = self.config, call.request
        err = call.extra.get("error")
        if err and err[0] == "UnsupportedProtocol":
            raise ApiError(*err)
        if call.action not in ACTIONS:
            what = "is missing" if call.action == NO_ACTION else f"`{call.action}` is not found"
            raise ApiError("InvalidAction", f"The action {what} (X-TC-Action) for service `captcha`.",
                           refusal("X-TC-Action", " or ".join(ACTIONS), call.action))
        version = request.headers.get("X-TC-Version", "").strip()
        if not version:
            raise ApiError("MissingParameter", "The request is missing a required parameter `Version`.",
                           refusal("X-TC-Version", cfg.api_version, "missing"))
        if version != cfg.api_version:
            raise ApiError("NoSuchVersion", f"The requested version `{version}` of service `captcha` does not exist.",
                           refusal("X-TC-Version", cfg.api_version, version[:40]))
        is_get = request.method == "GET"
        signature.verify(method=request.method, path=request.raw_path.split("?", 1)[0],
                         query=request.raw_path.partition("?")[2] if is_get else "",
                         headers=request.headers, payload=b"" if is_get else call.extra["raw"],
                         secret_keys=cfg.secret_keys, skew_s=cfg.signature_skew_s,
                         check_signature=cfg.verify_signature, sdk_endpoint=cfg.signature_sdk_endpoint)
        if cfg.rate_limit_qps is not None and self._over_rate(cfg.rate_limit_qps):
            raise ApiError("RequestLimitExceeded", answers.ERROR_MSG["RequestLimitExceeded"])
        if err:
            raise ApiError(*err)
        p = check_params(call.action, call.params, cfg)
        v = verify(call.action, p, cfg, self.tickets)
        reply = answers.result_reply(v.code, rid, evil_level=v.evil_level, get_time=v.get_time,
                                     submit_time=v.submit_time, mini=call.action == MINI)
        reply.refused, reply.refusal_is_answer = v.refused, True
        return reply

    def _over_rate(self, qps: float) -> bool:
        now = time.monotonic()
        start, n = self._window
        if now - start >= 1.0:
            start, n = now, 0
        self._window = (start, n + 1)
        return n + 1 > qps

    def _script(self, call: Call) -> Reply:
        base = f"{call.request.scheme}://{call.request.host}"
        js = loader_script(base, self.config.frontend_timeout_ms, self.config.frontend_dr_prefix).encode()
        return Reply(200, js, "application/javascript", {"Cache-Control": "no-store"},
                     {"script": SCRIPT_ACTION, "bytes": len(js)})

    def _frontend_ticket(self, call: Call) -> Reply:
        if call.request.method == "OPTIONS":
            return Reply(204, b"", "text/plain", dict(CORS), "")
        raw = call.params.get("aid", call.params.get("appid", call.params.get("CaptchaAppId")))
        try:
            appid = int(str(raw))
        except ValueError:
            return Reply.json({"ret": 1, "errorMessage": "invalid CaptchaAppId"}, headers=CORS)
        if appid not in self.config.apps and not self.config.frontend_any_appid:
            return Reply.json({"ret": 1, "errorMessage": "unknown CaptchaAppId"}, headers=CORS)
        try:
            evil = max(0, min(100, int(str(call.params.get("evil_level", 0)))))
        except ValueError:
            evil = 0
        t = self.tickets.issue(appid, evil_level=evil, user_ip=call.request.remote, source="frontend")
        return Reply.json({"ret": 0, "ticket": t.ticket, "randstr": t.randstr, "appid": str(appid)}, headers=CORS)

    # --- faults ------------------------------------------------------------------------------
    def fault_reply(self, effect: Effect, call: Call) -> Reply | None:
        kind = call.extra.get("kind")
        if kind == "script":
            if effect.error is None:
                return None
            return Reply.text(f"{effect.error}: {effect.message or 'injected'}\n", status=500)
        if kind == "ticket":
            if effect.error is None:
                return None
            return Reply.json({"ret": 1, "errorCode": 1006, "errorMessage": effect.error}, status=500, headers=CORS)
        rid = self._request_id()
        if effect.error is not None:
            return answers.error_reply(effect.error, effect.message, rid)
        return answers.result_reply(int(effect.captcha_code or 0), rid, mini=call.action == MINI)

    # --- control API ---------------------------------------------------------------------------
    def issue(self, req: IssueTicket) -> dict[str, Any]:
        appid = req.appid if req.appid is not None else next(iter(self.config.apps), DEFAULT_APP_ID)
        evil = 100 if req.suspicious else req.evil_level
        self.tickets.limit = self.config.max_tickets
        t = self.tickets.issue(appid, evil_level=evil, user_ip=req.user_ip, age_s=req.age_s)
        self.ctx.record(TICKET.event(service=self.name, action="issue", ticket=t.ticket, randstr=t.randstr,
                                     appid=appid, evil_level=evil, age_s=req.age_s))
        return {"ticket": t.ticket, "randstr": t.randstr, "appid": appid, "evil_level": evil,
                "issued_at": t.issued_at}

    def control_routes(self) -> list[web.RouteDef]:
        async def post_ticket(request: web.Request) -> web.Response:
            raw = await request.read()
            try:
                data = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError as e:
                return _json({"error": f"body: invalid JSON: {e}"}, 400)
            if not isinstance(data, dict):
                return _json({"error": "body: expected a JSON object"}, 400)
            try:
                req = IssueTicket.model_validate(data)
            except ValidationError as e:
                return _json({"error": format_validation_error(e, "ticket")}, 400)
            return _json(self.issue(req), 201)

        async def list_tickets(request: web.Request) -> web.Response:
            try:
                limit = int(request.query.get("limit", "100"))
            except ValueError:
                return _json({"error": "limit: expected an integer"}, 400)
            items = self.tickets.all()[-max(limit, 0):] if limit else []
            life = self.config.ticket_lifetime_s
            return _json({"count": len(self.tickets.all()), "tickets": [t.public(life) for t in items]})

        return [web.post("/captcha/tickets", post_ticket), web.get("/captcha/tickets", list_tickets)]

    def openapi_paths(self) -> dict[str, Any]:
        ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
        bad = {"description": "invalid input", "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Error"}}}}
        return {"/captcha/tickets": {
            "post": {"summary": "Issue a ticket as if a user solved the captcha → {ticket, randstr, appid}",
                     "requestBody": {"required": False, "content": {"application/json": {
                         "schema": IssueTicket.model_json_schema()}}},
                     "responses": {"201": ok, "400": bad}},
            "get": {"summary": "Issued tickets with their state (fresh / used / expired), newest last",
                    "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "default": 100}}],
                    "responses": {"200": ok, "400": bad}},
        }}


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type="application/json")


def _body_params(raw: bytes, content_type: str) -> dict[str, Any] | None:
    """JSON object (or a urlencoded form) → dict; None when the body is not one."""
    if not raw.strip():
        return {}
    if content_type == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
