"""The routes of the mitmproxy addon. It decides in its own process, on a mirror of the run's ``mitm``
rules (``harness.proxy.rule_mirror``), and calls the control API only for these:

- ``POST /decide/mirror``  once at start: the host writes its ``mitm`` rules to a file on every change;
- ``POST /decide/journal`` its events, in order, batched: the ``decision`` events of its engine (written
                           as the host's own engine writes them) and its ``proxy.flow`` events (marked
                           ``source: api`` as on ``POST /journal``); no other kind;
- ``POST /decide/reply``   the answer of a fault it decided that shapes the answer (the service mock's
                           own error shape, from the mock's own parse of the request).

``POST /decide`` asks the host's engine for a decision (the decision itself is
``harness.proxy.decide.decide_for_proxy``): for a proxy that keeps no mirror."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Callable

from aiohttp import web
from pydantic import ValidationError

from harness.control.http import error, json_response, read_json
from harness.faults import Effect
from harness.journal import kinds
from harness.proxy.decide import decide_for_proxy, observe_proxied, reply_for_proxy
from harness.proxy.rule_mirror import OBSERVE, RuleMirror

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
        if data.get("request") is not None and (problem := _raw_request_problem(data["request"])):
            return error(400, problem)
        return json_response(await decide_for_proxy(host, data))
    return decide


def _raw_request_problem(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return "request: expected a JSON object"
    headers = raw.get("headers") or []
    if not isinstance(headers, list) or not all(isinstance(h, list) and len(h) == 2 for h in headers):
        return "request.headers: expected a list of [name, value] pairs"
    try:
        base64.b64decode(raw.get("body_b64") or "", validate=True)
    except (ValueError, TypeError):
        return "request.body_b64: expected base64"
    return None


ADDON_KINDS = (kinds.DECISION.name, kinds.PROXY_FLOW.name)


def add_addon_routes(app: web.Application, host: "MockHost") -> None:
    """``/decide`` and the addon's ``/decide/mirror``, ``/decide/journal``, ``/decide/reply``."""
    mirrors: list[RuleMirror] = []  # one per host, made on first use

    async def mirror(_: web.Request) -> web.Response:
        if not mirrors:
            mirrors.append(RuleMirror(host))
        return json_response(mirrors[0].paths())

    async def journal(request: web.Request) -> web.Response:
        data = await read_json(request)
        events = data if isinstance(data, list) else [data]
        for i, ev in enumerate(events):
            if isinstance(ev, dict) and ev.get("kind") == OBSERVE:
                if (problem := _raw_request_problem(ev.get("request"))) is not None:
                    return error(400, f"events[{i}].{problem}")
                continue
            if not isinstance(ev, dict) or ev.get("kind") not in ADDON_KINDS:
                return error(400, f"events[{i}].kind: expected one of {', '.join((*ADDON_KINDS, OBSERVE))}")
            if (problem := host.journal.problem(ev)) is not None:
                return error(400, f"events[{i}]: {problem}")
        # proxy.flow marked as on POST /journal; decisions as the host's own engine writes them, and
        # counted in its rule list (GET /rules shows how often a mitm rule matched and fired)
        seqs = []
        for ev in events:
            if ev["kind"] == OBSERVE:  # shown to the mocks that watch their links; not journaled as such
                observe_proxied(host, ev.get("link"), ev.get("service"), ev.get("ref"), ev["request"], ev.get("rule"))
                continue
            flow = ev["kind"] == kinds.PROXY_FLOW.name
            seqs.append(host.journal.write({**{k: v for k, v in ev.items() if k not in ("seq", "ts", "t")},
                                            **({"source": "api"} if flow else {})}))
            if not flow:
                host.engine.tally(str(ev.get("rule")), bool(ev.get("fired")))
        return json_response({"seqs": seqs}, 201)

    async def reply(request: web.Request) -> web.Response:
        data = await read_json(request)
        if not isinstance(data, dict):
            return error(400, "body: expected a JSON object")
        if data.get("service") is not None and not isinstance(data["service"], str):
            return error(400, "service: expected a string")
        if (problem := _raw_request_problem(data.get("request"))) is not None:
            return error(400, problem)
        if not isinstance(data.get("effect"), dict):
            return error(400, "effect: expected a JSON object")
        try:
            Effect.model_validate(data["effect"])
        except ValidationError as e:
            return error(400, f"effect: {e.errors()[0]['msg']}")
        return json_response(await reply_for_proxy(host, data))

    app.router.add_post("/decide", decide_handler(host))
    app.router.add_post("/decide/mirror", mirror)
    app.router.add_post("/decide/journal", journal)
    app.router.add_post("/decide/reply", reply)


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
            "schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/decide/mirror": {"post": {
        "summary": "Keep a file copy of the run's mitm rules up to date (for the mitmproxy addon)",
        "responses": {"200": {"description": "where the rules and their version counter are written",
                              "content": {"application/json": {"schema": {"type": "object", "properties": {
                                  "rules_file": {"type": "string"}, "version_file": {"type": "string"}}}}}}}}},
    "/decide/journal": {"post": {
        "summary": "Append the mitmproxy addon's decision and proxy.flow events, in order",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "array", "items": {"$ref": "#/components/schemas/EventIn"}}}}},
        "responses": {"201": {"description": "sequence numbers"},
                      "400": {"description": "bad input", "content": {"application/json": {
                          "schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/decide/reply": {"post": {
        "summary": "The service's answer for a fault the mitmproxy addon decided",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["request", "effect"], "properties": {
                "service": {"type": ["string", "null"]}, "request": {"type": "object"},
                "effect": {"type": "object"}}}}}},
        "responses": {"200": {"description": "the reply (status, content_type, headers, body_b64)"},
                      "400": {"description": "bad input", "content": {"application/json": {
                          "schema": {"$ref": "#/components/schemas/Error"}}}}}}},
}
