"""The control API's side of a proxied request: ``POST /decide`` (the host's seeded engine decides for
a proxy that keeps no mirror of the rules) and ``POST /decide/reply`` (the answer of a fault the
mitmproxy addon decided itself, on its mirror: ``harness.proxy.rule_mirror``).

A proxy decides only the rules whose applier is the mitmproxy flow (``Rule.applier`` is
``Applier.MITM``, computed when the rule is parsed): rules with a proxy-only effect
(``drop_response``, ``duplicate_request``) on any link, and rules with ``match.link`` whose effect is
HTTP-level (``error``/``captcha_code``/``status``/``body``/``headers``/``content_type``, ``delay_ms``,
``hang``, ``reset``). Rules without a link are the mocks' (so a fault is never applied twice), callback
rules the callback senders', ``toxic``/``link_down`` Toxiproxy's; ``partial_body`` on a link is
refused when the rule is parsed (use the ``limit_data`` toxic).

The proxy sends the raw request (method, path with query, headers, body); when the host runs a mock
of that service, the mock's own ``parse`` computes ``action`` and ``params`` (so rules select exactly
the requests they would select at the mock), otherwise ``raw_request`` does (live mode against an
unknown service). The decision is journaled by the engine like any other (``ref`` = the flow id). The
decision carries what the effect means here exactly as at the mock: ``delay_s`` (``delay_ms`` scaled
by the run's time scale), ``hang_s`` (the host's hang limit) and, when the effect shapes the answer,
the ``reply`` built by ``shape_reply`` with the service mock's ``fault_reply`` (the protocol's own
error shape), so the proxy only has to wait and send it.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

from harness.faults import Applier, Effect
from harness.faults.rules import scaled_s
from harness.proxy.raw_request import action_and_params
from mocks.base.http import Request
from mocks.base.reply import BadRequest, Call, Reply, shape_reply

if TYPE_CHECKING:
    from harness.host import MockHost

log = logging.getLogger("harness.proxy")


async def parse_request(host: "MockHost", service: str | None, raw: dict[str, Any]
                        ) -> tuple[str, dict[str, Any], Call | None]:
    """``action``, ``params`` (and the mock's ``Call``) for a raw request, as the mock would see it."""
    method = str(raw.get("method") or "GET").upper()
    target = str(raw.get("path") or "/")
    if not target.startswith("/"):
        target = "/" + target
    headers = [(str(k), str(v)) for k, v in (raw.get("headers") or [])]
    body = base64.b64decode(raw.get("body_b64") or "")
    mock = host.services.get(service or "")
    if mock is not None:
        try:
            call = await mock.parse(Request.detached(method, target, headers, body))
        except BadRequest as bad:
            return bad.action, {}, None
        except Exception as e:  # never fail the flow over a parse problem
            log.warning("%s.parse failed on a proxied request: %s", service, e)
        else:
            return call.action, call.params, call
    path, _, query = target.partition("?")
    from urllib.parse import parse_qsl
    action, params = action_and_params(service, method, path, parse_qsl(query, keep_blank_values=True),
                                       dict(headers), body)
    return action, params, None


def build_reply(host: "MockHost", service: str | None, call: Call | None, action: str,
                params: dict[str, Any], effect: Effect) -> Reply:
    """The reply the service's mock would give for ``effect`` (raw fields when there is no mock)."""
    call = call or Call(action, params, None)  # type: ignore[arg-type]
    mock = host.services.get(service or "")
    if mock is not None:
        try:
            return shape_reply(effect, call, mock.fault_reply)
        except Exception as e:  # a fault_reply that needs more than the request: use the raw fields
            log.warning("%s.fault_reply failed outside the mock (%s); sending raw status/body", service, e)
    return shape_reply(effect, call)


async def decide_for_proxy(host: "MockHost", data: dict[str, Any]) -> dict[str, Any]:
    """``data``: ``service``, ``link``, ``ref`` and either ``request`` (raw: method, path, headers as
    pairs, body_b64) or ``action`` + ``params``. Returns ``{"action", "params", "decision"}``."""
    service, link = data.get("service"), data.get("link")
    call = None
    if isinstance(data.get("request"), dict):
        action, params, call = await parse_request(host, service, data["request"])
    else:
        action, params = data.get("action"), data.get("params") or {}
    engine = host.engine
    decision = engine.decide(service, action, params, link=link, ref=data.get("ref"), applier=Applier.MITM)
    out: dict[str, Any] = {"action": action, "decision": None}
    if isinstance(data.get("request"), dict):
        observe_proxied(host, link, service, data.get("ref"), data["request"], decision.rule_id if decision else None)
    if decision is None:
        return out
    effect = decision.effect
    out["decision"] = {"rule": decision.rule_id, "n": decision.n,
                       "effect": effect.model_dump(mode="json", exclude_defaults=True),
                       "delay_s": scaled_s(effect.delay_ms, host.ctx.time_scale), "hang_s": host.ctx.hang_limit_s}
    if effect.shapes_response:
        out["decision"]["reply"] = _reply_json(build_reply(host, service, call, action or "", params, effect))
    return out


def observe_proxied(host: "MockHost", link: str | None, service: str | None, ref: Any, raw: dict[str, Any],
                    rule: str | None) -> None:
    """Show a request that passed a mitm link to the mocks that watch their links (e.g. a solution used)."""
    for mock in host.services.values():
        observe = getattr(mock, "observe_proxied", None)
        if observe is not None:
            observe(link, service, ref, raw, rule)


async def reply_for_proxy(host: "MockHost", data: dict[str, Any]) -> dict[str, Any]:
    """The answer for an effect the addon decided itself: ``data`` has ``service``, the raw
    ``request`` and the ``effect`` (its JSON). Returns ``{"reply": {status, content_type, headers, body_b64}}``."""
    service = data.get("service")
    action, params, call = await parse_request(host, service, data["request"])
    effect = Effect.model_validate(data["effect"])
    return {"reply": _reply_json(build_reply(host, service, call, action or "", params, effect))}


def _reply_json(reply: Reply) -> dict[str, Any]:
    return {"status": reply.status, "content_type": reply.content_type, "headers": reply.headers,
            "body_b64": base64.b64encode(reply.body).decode()}
