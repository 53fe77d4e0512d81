"""JSON in, JSON out: the control API's answers and its one way of reading a body."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type="application/json")


def error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise web.HTTPBadRequest(text=orjson.dumps({"error": "body: expected JSON, got nothing"}).decode(),
                                 content_type="application/json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise web.HTTPBadRequest(text=orjson.dumps({"error": f"body: invalid JSON: {e}"}).decode(),
                                 content_type="application/json") from None
