"""``POST /decide`` on the control API: the seeded engine decides for a proxy (the mitmproxy addon).

Which rules a proxy applies: rules whose effect is proxy-only (``drop_response``,
``duplicate_request``) on any link, and rules with ``match.link`` set whose effect is HTTP-level
(``error``/``captcha_code``/``status``/``body``/``headers``, ``delay_ms``, ``hang``, ``reset``). Rules
without a link stay with the mocks (so a fault is never applied twice), callback rules with the
callback senders, ``toxic``/``link_down`` with Toxiproxy. ``partial_body`` is a mock-side effect only
(use the ``limit_data`` toxic on a link instead).

The decision is journaled by the engine like any other (``ref`` = the flow id). When the effect shapes
the answer, the reply is built here by the service's mock (``fault_reply``: the protocol's own error
shape) so the addon only has to send it.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any, Callable

from aiohttp import web

from harness.faults import Effect, RuleEngine
from mocks.base.reply import Call, Reply

if TYPE_CHECKING:
    from harness.host import MockHost

log = logging.getLogger("harness.proxy")


def is_http_effect(effect: Effect) -> bool:
    return (effect.callback is None and effect.toxic is None and not effect.link_down
            and effect.partial_body in (None, False))


def is_proxy_only(effect: Effect) -> bool:
    return effect.drop_response or effect.duplicate_request is not None


def proxy_filter(engine: RuleEngine) -> Callable[[Effect], bool]:
    """An ``only=`` predicate for ``engine.decide`` selecting the rules a proxy applies.

    ``only`` sees effects, not rules; rules with a link are recognised by their effect object's
    identity (the engine hands ``only`` the very object ``engine.rules()`` returns, and the snapshot
    keeps those objects alive so no identity is reused during the call)."""
    snapshot = engine.rules()
    linked = {id(rule.effect) for _, rule in snapshot if rule.match.link is not None}

    def only(effect: Effect, _keep: Any = snapshot) -> bool:
        return is_http_effect(effect) and (is_proxy_only(effect) or id(effect) in linked)
    return only


def build_reply(host: "MockHost", service: str | None, action: str, params: dict[str, Any],
                effect: Effect) -> Reply:
    mock = host.services.get(service or "")
    if mock is not None:
        try:
            return mock._shaped(effect, Call(action, params, None))  # type: ignore[arg-type]
        except Exception as e:  # a fault_reply that needs the live request: fall back to the raw fields
            log.warning("%s.fault_reply failed outside the mock (%s); sending raw status/body", service, e)
    status = effect.status or (500 if effect.error is not None else 200)
    if effect.body is not None:
        reply = (Reply.text(effect.body, status=status, content_type="text/html" if effect.body.lstrip()
                            .startswith("<") else "text/plain")
                 if isinstance(effect.body, str) else Reply.json(effect.body, status=status))
    elif effect.error is not None:
        reply = Reply.text(effect.error + (f": {effect.message}" if effect.message else ""), status=status)
    else:
        reply = Reply.text("", status=status)
    if effect.content_type is not None:
        reply.content_type = effect.content_type
    reply.headers.update(effect.headers)
    return reply


def decide_for_proxy(host: "MockHost", service: str | None, action: str | None, params: dict[str, Any],
                     link: str | None, ref: Any = None) -> dict[str, Any] | None:
    engine = host.engine
    decision = engine.decide(service, action, params, link=link, ref=ref, only=proxy_filter(engine))
    if decision is None:
        return None
    effect = decision.effect
    out: dict[str, Any] = {"rule": decision.rule_id, "n": decision.n,
                           "effect": effect.model_dump(mode="json", exclude_defaults=True)}
    if effect.shapes_response:
        reply = build_reply(host, service, action or "", params, effect)
        out["reply"] = {"status": reply.status, "content_type": reply.content_type, "headers": reply.headers,
                        "body_b64": base64.b64encode(reply.body).decode()}
    return out


def decide_handler(host: "MockHost") -> Callable[[web.Request], Any]:
    from harness.control.api import error, json_response, read_json

    async def decide(request: web.Request) -> web.Response:
        data = await read_json(request)
        if not isinstance(data, dict):
            return error(400, "body: expected a JSON object")
        fields = {k: data.get(k) for k in ("service", "action", "link")}
        for key, value in fields.items():
            if value is not None and not isinstance(value, str):
                return error(400, f"{key}: expected a string")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            return error(400, "params: expected a JSON object")
        ref = data.get("ref")
        return json_response({"decision": decide_for_proxy(host, fields["service"], fields["action"], params,
                                                           fields["link"], ref)})
    return decide


OPENAPI_PATH = {"/decide": {"post": {
    "summary": "Ask the rule engine for a proxy decision (used by the mitmproxy addon)",
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {
            "service": {"type": ["string", "null"]}, "action": {"type": ["string", "null"]},
            "params": {"type": "object"}, "link": {"type": ["string", "null"]}, "ref": {}}}}}},
    "responses": {
        "200": {"description": "the decision (null: forward untouched)", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"decision": {"type": ["object", "null"], "properties": {
                "rule": {"type": "string"}, "n": {"type": "integer"}, "effect": {"type": "object"},
                "reply": {"type": "object", "properties": {
                    "status": {"type": "integer"}, "content_type": {"type": "string"},
                    "headers": {"type": "object"}, "body_b64": {"type": "string"}}}}}}}}}},
        "400": {"description": "bad input", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}}}}}
