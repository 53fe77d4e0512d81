"""Chat routes on the control API (``{control}/chat/...``), besides the automatic ``/chat/config``.

- ``POST /chat/webhooks``  send one callback now and return the app's answer. Body: the callback
  body with ``CallbackCommand`` (required); fields not given come from a default body for the
  command. Optional ``_params`` (extra/overriding URL params, e.g. ``{"OptPlatform": "IOS"}``),
  ``_client_ip``, ``_platform`` (``null`` leaves the parameter out).
- ``POST /chat/emit``      Chat sends callbacks of its own accord (a genuine alarm, a burst): see ``emit``.
- ``GET /chat/messages``   the delivered messages the mock remembers (last 10 000).
- ``GET /chat/usersig?identifier=&expire=``  a valid UserSig for the configured app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from mocks.chat import webhooks
from mocks.chat.emit import COMMAND as _COMMAND, emit_routes
from mocks.chat.usersig import DEFAULT_EXPIRE, make_usersig

if TYPE_CHECKING:
    from mocks.chat.service import ChatMock


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type="application/json")


MAX_EXPIRE = 2**31 - 1


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def control_routes(mock: "ChatMock") -> list[web.RouteDef]:
    async def send_webhook(request: web.Request) -> web.Response:
        try:
            data = orjson.loads(await request.read())
        except orjson.JSONDecodeError as e:
            return _error(400, f"body: invalid JSON: {e}")
        if not isinstance(data, dict):
            return _error(400, "body: expected a JSON object with CallbackCommand")
        command = data.pop("CallbackCommand", None)
        if not isinstance(command, str) or not _COMMAND.match(command):
            return _error(400, "CallbackCommand: expected a command like 'State.StateChange'")
        extra = data.pop("_params", None) or {}
        if not isinstance(extra, dict) or not all(isinstance(v, (str, int)) for v in extra.values()):
            return _error(400, "_params: expected an object of string values")
        default_platform, body = webhooks.template(command)
        platform = data.pop("_platform", default_platform)
        client_ip = data.pop("_client_ip", "127.0.0.1")
        if platform is not None and not isinstance(platform, str):
            return _error(400, "_platform: expected a string or null")
        if client_ip is not None and not isinstance(client_ip, str):
            return _error(400, "_client_ip: expected a string or null")
        unknown = [k for k in data if k.startswith("_")]
        if unknown:
            return _error(400, f"{unknown[0]}: unknown option (have _params, _platform, _client_ip)")
        if mock.config.webhook_url is None:
            return _error(409, "webhook_url is not set (PUT /chat/config {\"webhook_url\": ...})")
        body.update(data)
        answer = await mock.webhook(command, body, client_ip=client_ip, platform=platform,
                                    url_extra={k: str(v) for k, v in extra.items()}, ref="control")
        result: dict[str, Any] = {"CallbackCommand": command, "body": {"CallbackCommand": command, **body},
                                  "answer": answer.public(), "response": answer.data}
        if webhooks.is_before(command):
            result["verdict"] = webhooks.before_verdict(answer, mock.config.before_send_on_failure).action
        return _json(result)

    async def messages(_: web.Request) -> web.Response:
        return _json({"messages": list(mock.state.messages)})

    async def usersig(request: web.Request) -> web.Response:
        identifier = request.query.get("identifier") or mock.config.admin_identifier
        try:
            expire = int(request.query.get("expire", DEFAULT_EXPIRE))
        except ValueError:
            return _error(400, "expire: expected an integer number of seconds")
        if not -MAX_EXPIRE <= expire <= MAX_EXPIRE:  # TLS.expire is a JSON integer; keep it 32-bit
            return _error(400, f"expire: expected seconds between -{MAX_EXPIRE} and {MAX_EXPIRE}")
        cfg = mock.config
        return _json({"sdkappid": cfg.sdkappid, "identifier": identifier, "expire": expire,
                      "usersig": make_usersig(cfg.sdkappid, cfg.secret_key, identifier, expire)})

    return [web.post("/chat/webhooks", send_webhook), web.get("/chat/messages", messages),
            web.get("/chat/usersig", usersig), *emit_routes(mock)]


def openapi_paths() -> dict[str, Any]:
    obj = {"type": "object"}
    ok = {"description": "ok", "content": {"application/json": {"schema": obj}}}
    err = {"description": "bad input", "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}}
    return {
        "/chat/webhooks": {"post": {
            "summary": "Send one Chat callback to the app's webhook now; returns the app's answer",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["CallbackCommand"], "properties": {
                    "CallbackCommand": {"type": "string", "example": "State.StateChange"},
                    "_params": {"type": "object", "additionalProperties": {"type": "string"}},
                    "_platform": {"type": ["string", "null"]},
                    "_client_ip": {"type": ["string", "null"]}},
                "additionalProperties": True}}}},
            "responses": {"200": ok, "400": err, "409": err}}},
        "/chat/emit": {"post": {
            "summary": "Send count callbacks now (a genuine alarm, a burst), spread over within_s; not waited for",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["event"], "additionalProperties": False, "properties": {
                    "event": {"type": "string", "example": "Alert.RequestOverLimit"}, "body": obj,
                    "count": {"type": "integer", "minimum": 1}, "within_s": {"type": "number", "minimum": 0}}}}}},
            "responses": {"202": ok, "400": err, "409": err}}},
        "/chat/messages": {"get": {"summary": "Messages the Chat mock delivered", "responses": {"200": ok}}},
        "/chat/usersig": {"get": {"summary": "A valid UserSig for the configured SDKAppID and key", "parameters": [
            {"name": "identifier", "in": "query", "schema": {"type": "string"}},
            {"name": "expire", "in": "query", "schema": {"type": "integer"}}],
            "responses": {"200": ok, "400": err}}},
    }
