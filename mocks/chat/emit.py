"""``POST {control}/chat/emit``: Chat sends webhooks of its own accord, as the timeline's ``emit``
step asks — a genuine ``Alert.RequestOverLimit`` (journaled as a ``rate_alarm`` like one the rate
limiter raises) or a burst of any callback, without the app calling REST.

Body: ``{"event": "<CallbackCommand>", "body": {…over the default body…}, "count": 1, "within_s": 0}``.
The ``count`` webhooks start evenly spread over ``within_s`` and are not waited for; the answer (202)
comes when the last one has started. In a burst of a message callback each copy is its own message
(``MsgSeq`` and ``MsgKey`` numbered), so a burst is many events, not duplicates of one.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from mocks.chat import webhooks
from mocks.chat.events import RATE_ALARM

if TYPE_CHECKING:
    from mocks.chat.service import ChatMock

ALARM = "Alert.RequestOverLimit"
MAX_COUNT = 10_000
COMMAND = re.compile(r"^[A-Za-z][A-Za-z0-9]*\.[A-Za-z0-9_.]+$")


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"error": message}), content_type="application/json")


def _parse(data: Any) -> tuple[str, dict[str, Any], int, float] | str:
    if not isinstance(data, dict):
        return "body: expected a JSON object with event"
    unknown = sorted(set(data) - {"event", "body", "count", "within_s"})
    if unknown:
        return f"{unknown[0]}: unknown field (have event, body, count, within_s)"
    event, body = data.get("event"), data.get("body") or {}
    count, within = data.get("count", 1), data.get("within_s", 0)
    if not isinstance(event, str) or not COMMAND.match(event):
        return "event: expected a callback command like 'Alert.RequestOverLimit'"
    if not isinstance(body, dict):
        return "body: expected an object of callback fields"
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        return f"count: expected an integer from 1 to {MAX_COUNT}"
    if isinstance(within, bool) or not isinstance(within, (int, float)) or not 0 <= within <= 3600:
        return "within_s: expected seconds from 0 to 3600"
    return event, body, count, float(within)


def one_body(event: str, given: dict[str, Any], i: int, count: int) -> tuple[str | None, dict[str, Any]]:
    platform, body = webhooks.template(event)
    if count > 1 and "MsgKey" in body and "MsgKey" not in given:
        body["MsgSeq"] = i + 1
        body["MsgKey"] = f"{i + 1}_{body.get('MsgRandom', 1)}_{body.get('MsgTime', 0)}"
    body.update(given)
    return platform, body


def send_one(mock: "ChatMock", event: str, given: dict[str, Any], i: int, count: int) -> None:
    platform, body = one_body(event, given, i, count)
    if event == ALARM:
        mock.ctx.record(RATE_ALARM.event(service=mock.name, action=ALARM, ServiceName=body.get("ServiceName"),
                                         Command=body.get("Command"), Request=body.get("Request"),
                                         Limit=body.get("Limit"), sent=True, origin="emit"))
    mock.spawn_webhook(event, body, platform=platform, ref="emit")


def emit_routes(mock: "ChatMock") -> list[web.RouteDef]:
    async def emit(request: web.Request) -> web.Response:
        try:
            parsed = _parse(orjson.loads(await request.read()))
        except orjson.JSONDecodeError as e:
            return _error(400, f"body: invalid JSON: {e}")
        if isinstance(parsed, str):
            return _error(400, parsed)
        if mock.config.webhook_url is None:
            return _error(409, "webhook_url is not set (PUT /chat/config {\"webhook_url\": ...})")
        event, given, count, within = parsed
        loop = asyncio.get_running_loop()
        t0, step = loop.time(), (within / (count - 1) if count > 1 else 0.0)
        for i in range(count):
            wait = t0 + i * step - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            send_one(mock, event, given, i, count)
        return web.Response(status=202, body=orjson.dumps({"event": event, "count": count}),
                            content_type="application/json")

    return [web.post("/chat/emit", emit)]
