"""``POST /decide``: the route a proxy (the mitmproxy addon) asks for a decision; the decision itself is
``harness.proxy.decide.decide_for_proxy``."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Callable

from aiohttp import web

from harness.control.http import error, json_response, read_json
from harness.proxy.decide import decide_for_proxy

if TYPE_CHECKING:
    from harness.host import MockHost


def decide_handler(host: "MockHost") -> Callable[[web.Request], Any]:
    async def decide(request: web.Request) -> web.Response:
        data = await read_json(request)
        if not isinstance(data, dict):
            return error(400, "body: expected a JSON object")
        for key in ("service", "action", "link"):
            if data.get(key) is not None and not isinstance(data[key], str):
                return error(400, f"{key}: expected a string")
        if data.get("params") is not None and not isinstance(data["params"], dict):
            return error(400, "params: expected a JSON object")
        raw = data.get("request")
        if raw is not None:
            if not isinstance(raw, dict):
                return error(400, "request: expected a JSON object")
            headers = raw.get("headers") or []
            if not isinstance(headers, list) or not all(isinstance(h, list) and len(h) == 2 for h in headers):
                return error(400, "request.headers: expected a list of [name, value] pairs")
            try:
                base64.b64decode(raw.get("body_b64") or "", validate=True)
            except (ValueError, TypeError):
                return error(400, "request.body_b64: expected base64")
        return json_response(await decide_for_proxy(host, data))
    return decide


DECIDE_OPENAPI = {"/decide": {"post": {
    "summary": "Ask the rule engine for a proxy decision (used by the mitmproxy addon)",
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {
            "service": {"type": ["string", "null"]}, "link": {"type": ["string", "null"]}, "ref": {},
            "request": {"type": "object", "description": "the raw request; parsed by the service's mock",
                        "properties": {"method": {"type": "string"}, "path": {"type": "string"},
                                       "headers": {"type": "array", "items": {"type": "array"}},
                                       "body_b64": {"type": "string"}}},
            "action": {"type": ["string", "null"], "description": "instead of request"},
            "params": {"type": "object", "description": "instead of request"}}}}}},
    "responses": {
        "200": {"description": "the decision (null: forward untouched)", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"action": {"type": ["string", "null"]},
                                                        "decision": {"type": ["object", "null"], "properties": {
                "rule": {"type": "string"}, "n": {"type": "integer"}, "effect": {"type": "object"},
                "delay_s": {"type": "number", "description": "delay_ms in seconds, scaled by the run's time scale"},
                "hang_s": {"type": "number", "description": "how long a hang holds the request"},
                "reply": {"type": "object", "properties": {
                    "status": {"type": "integer"}, "content_type": {"type": "string"},
                    "headers": {"type": "object"}, "body_b64": {"type": "string"}}}}}}}}}},
        "400": {"description": "bad input", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}}}}}
