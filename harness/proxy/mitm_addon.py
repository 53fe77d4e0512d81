"""mitmproxy addon (loaded by ``mitmdump -s``): HTTP-level faults from the harness rules, every flow
recorded in the run journal.

It decides in the mitmdump process, with the run's seeded engine (``harness.faults.engine``): at start
it asks the control API ``POST /decide/mirror`` and from then on keeps a mirror of the run's ``mitm``
rules (``harness.proxy.rule_mirror``: one 8-byte version compare per flow, the rules re-read only when
they changed). The addon is the only applier of those rules, so their match counts live here and the
decisions are the ones the host's engine would make: same seed, same order of flows, same decisions.
For each request it reads ``action`` and ``params`` with the service's raw-request reading
(``harness.proxy.raw_request``: each service's ``raw_request.py``, checked against its mock's own
parse), decides, then:

- ``delay_ms``            waits before forwarding: ``delay_ms`` scaled by the run's time scale, as at the mock;
- ``hang``                never answers (holds the request for the host's hang limit, as at the mock,
                          then closes);
- ``reset``               closes the client connection without an answer (mitmproxy kills the flow:
                          a close, not necessarily a TCP RST — use the ``reset_peer`` toxic for that);
- ``error`` / ``captcha_code`` / ``status`` / ``body``  answers itself with the reply the control API
                          builds (``POST /decide/reply``: the protocol's own error shape, from the mock's
                          own parse); upstream never sees the request;
- ``drop_response``       forwards, lets upstream process it, then kills the flow in the ``response``
                          hook — before a byte of the answer reaches the client;
- ``duplicate_request: N`` forwards, and once upstream has answered replays the request N more times
                          (mitmproxy client replay); the client gets the first answer.

Every flow becomes one ``proxy.flow`` journal event: ``link``, ``service``, ``fid``, ``method``,
``path``, ``action``, ``status`` (what the client got; null if nothing), ``upstream_status``, ``rule``,
``outcome`` (forwarded, replaced, dropped, duplicated, duplicate, reset, hang, upstream_error,
client_error), ``ms``. Events go to ``POST /decide/journal`` in order (``harness.proxy.addon_journal``):
a flow that a rule matched (its ``decision`` events, its ``proxy.flow``) is written before the client
gets anything or the fault ends the exchange; the other flows are sent in batches in the background,
and whatever is queued when mitmdump stops is sent in ``done``.

Options (``--set``): ``harness_control`` (control API URL), ``harness_token``, ``harness_routes``
(JSON ``{"<listen port>": {"link": ..., "service": ..., "parser": "module:function" or null, "tag": bool}}``;
``tag``: the upstream is a mock, and each request to it carries its flow's id in ``X-Harness-Flow``, which
the mock journals as the request's ``via``),
``harness_ready_file``; ``harness_hang_limit`` is accepted and unused (the host's hang limit comes
with the mirrored rules, as it came with each decision before).
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from mitmproxy import ctx, http

from harness.faults import Applier
from harness.faults.engine import RuleEngine
from harness.faults.rules import scaled_s
from harness.journal.kinds import VIA_HEADER
from harness.proxy.addon_journal import JournalSender
from harness.proxy.raw_request import action_and_params
from harness.proxy.rule_mirror import OBSERVE, MirrorReader

log = logging.getLogger("harness.mitm")
META = "harness"
MIRROR_RETRY_S = 1.0


class HarnessFaults:
    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.routes: dict[int, dict[str, Any]] = {}
        self.journal = JournalSender(self._post_events)
        self.engine = RuleEngine(record=self.journal.add)  # a mirror of the run's mitm rules
        self.mirror: MirrorReader | None = None
        self._opening: asyncio.Future[None] | None = None
        self._retry_at = 0.0

    def load(self, loader: Any) -> None:
        loader.add_option("harness_control", str, "", "control API URL of the harness run")
        loader.add_option("harness_token", str, "", "control API bearer token")
        loader.add_option("harness_routes", str, "{}", "JSON: listen port -> {link, service, parser, tag}")
        loader.add_option("harness_ready_file", str, "", "written once the addon runs")
        loader.add_option("harness_hang_limit", str, "300", "unused: the host's hang limit comes with the rules")

    def configure(self, updated: set[str]) -> None:
        if "harness_routes" in updated:
            self.routes = {int(k): {**v, "parse": _parser(v.get("parser"))}
                           for k, v in json.loads(ctx.options.harness_routes or "{}").items()}

    async def running(self) -> None:
        headers = {"Authorization": f"Bearer {ctx.options.harness_token}"} if ctx.options.harness_token else {}
        self.session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=10))
        self.journal.start()
        # not awaited: the harness may be waiting for the ready file on the loop that answers the call
        self._opening = asyncio.ensure_future(self._open_mirror())
        if ctx.options.harness_ready_file:
            with open(ctx.options.harness_ready_file, "w") as f:
                f.write("ready\n")

    async def done(self) -> None:
        await self.journal.close()
        if self.mirror is not None:
            self.mirror.close()
        if self.session is not None:
            await self.session.close()

    # --- helpers ---------------------------------------------------------------------------
    def _route(self, flow: http.HTTPFlow) -> dict[str, Any]:
        port = getattr(flow.client_conn.proxy_mode, "custom_listen_port", None)
        if port is None and flow.client_conn.sockname:
            port = flow.client_conn.sockname[1]
        return self.routes.get(int(port or 0), {"link": None, "service": None})

    async def _control(self, path: str, payload: Any) -> Any:
        assert self.session is not None
        async with self.session.post(ctx.options.harness_control + path, json=payload) as r:
            data = await r.json(content_type=None)
            if r.status == 400:
                raise ValueError(f"control {path}: {data}")
            if r.status >= 300:
                raise RuntimeError(f"control {path}: {r.status} {data}")
            return data

    async def _post_events(self, events: list[dict[str, Any]]) -> None:
        await self._control("/decide/journal", events)

    async def _open_mirror(self) -> None:
        """Start following the run's mitm rules."""
        try:
            paths = await self._control("/decide/mirror", {})
            self.mirror = MirrorReader(self.engine, paths["rules_file"], paths["version_file"])
        except Exception as e:
            log.warning("harness: cannot follow the run's rules (flows are forwarded untouched): %r", e)
            self._retry_at = time.monotonic() + MIRROR_RETRY_S

    async def _rules(self) -> MirrorReader | None:
        if self.mirror is None:
            if self._opening is None or (self._opening.done() and time.monotonic() >= self._retry_at):
                self._opening = asyncio.ensure_future(self._open_mirror())
            if not self._opening.done():
                await asyncio.shield(self._opening)
        if self.mirror is not None:
            try:
                self.mirror.refresh()
            except (OSError, ValueError, KeyError) as e:
                log.error("harness: cannot read the run's rules: %s", e)
        return self.mirror

    async def _journal(self, flow: http.HTTPFlow, outcome: str, **more: Any) -> None:
        meta = flow.metadata.setdefault(META, {})
        if meta.get("journaled"):
            return
        meta["journaled"] = True
        route = self._route(flow)
        event = {"kind": "proxy.flow", "link": route.get("link"), "service": route.get("service"),
                 "fid": flow.id, "method": flow.request.method, "path": flow.request.path,
                 "action": meta.get("action"), "status": None, "upstream_status": None,
                 "rule": meta.get("rule"), "outcome": outcome,
                 "ms": round((time.time() - flow.request.timestamp_start) * 1000, 2), **more}
        if flow.is_replay == "request":
            event["replay_of"] = meta.get("replay_of")
        self.journal.add(event)
        if meta.get("sync"):  # a rule matched it: journaled before the client gets anything
            await self.journal.flush()

    # --- hooks -----------------------------------------------------------------------------
    async def request(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.setdefault(META, {})
        route = self._route(flow)
        req = flow.request
        if route.get("tag"):  # the mock journals which flow carried the request (its answer may end here)
            req.headers[VIA_HEADER] = flow.id
        if flow.is_replay == "request":
            return  # a duplicate we sent: no decision, journaled when it completes
        body = req.get_content(strict=False) or b""
        meta["action"], params = _read(route, req, body)
        mirror = await self._rules()
        if mirror is None:
            return
        queued = self.journal.queued
        decision = self.engine.decide(route.get("service"), meta["action"], params, link=route.get("link"),
                                      ref=flow.id, applier=Applier.MITM)
        if self.journal.queued != queued:  # a rule matched: its decisions are written with the flow
            meta["sync"] = True
        if mirror.observe:  # a mock watches what passes its links (a solution used): the raw request
            self.journal.add({"kind": OBSERVE, "link": route.get("link"), "service": route.get("service"),
                              "ref": flow.id, "rule": decision.rule_id if decision else None,
                              "request": _raw(req, body)})
        if decision is None:
            return
        effect = decision.effect
        meta.update(rule=decision.rule_id, effect=effect.model_dump(mode="json", exclude_defaults=True))
        if effect.delay_ms:
            await asyncio.sleep(scaled_s(effect.delay_ms, mirror.time_scale))
        if effect.hang:
            await self._journal(flow, "hang")
            await asyncio.sleep(mirror.hang_limit_s)
            flow.kill()
            return
        if effect.reset:
            await self._journal(flow, "reset")
            flow.kill()
            return
        if effect.shapes_response:
            try:
                answer = await self._control("/decide/reply", {"service": route.get("service"),
                                                               "request": _raw(req, body),
                                                               "effect": meta["effect"]})
            except Exception as e:  # control API gone: forward untouched rather than break the run
                log.error("harness: no reply for %s %s: %s", req.method, req.path, e)
                return
            reply = answer["reply"]
            headers = {"Content-Type": reply.get("content_type") or "application/octet-stream",
                       **(reply.get("headers") or {})}
            flow.response = http.Response.make(int(reply["status"]), base64.b64decode(reply["body_b64"]), headers)
            meta["replaced"] = True

    async def response(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.setdefault(META, {})
        assert flow.response is not None
        status = flow.response.status_code
        if flow.is_replay == "request":
            await self._journal(flow, "duplicate", upstream_status=status)
            return
        if meta.get("replaced"):
            await self._journal(flow, "replaced", status=status)
            return
        effect = meta.get("effect") or {}
        if effect.get("drop_response"):
            await self._journal(flow, "dropped", upstream_status=status)
            flow.kill()  # before the response is sent: the client never sees it
            return
        extra = int(effect.get("duplicate_request") or 0)
        if extra:
            for i in range(extra):
                copy = flow.copy()
                copy.response = None
                copy.metadata[META] = {"action": meta.get("action"), "rule": meta.get("rule"),
                                       "replay_of": flow.id, "copy": i + 1}
                ctx.master.commands.call("replay.client", [copy])
            await self._journal(flow, "duplicated", status=status, upstream_status=status, duplicates=extra)
            return
        await self._journal(flow, "forwarded", status=status, upstream_status=status)

    async def error(self, flow: http.HTTPFlow) -> None:
        msg = flow.error.msg if flow.error else "error"
        outcome = "upstream_error" if flow.server_conn and flow.server_conn.error else "client_error"
        if flow.response is None and "connect" in msg.lower():
            outcome = "upstream_error"
        # mitmproxy answers an upstream failure with its own 502 page; a client error gets nothing
        await self._journal(flow, outcome, error=msg, status=502 if outcome == "upstream_error" else None)


def _raw(req: http.Request, body: bytes) -> dict[str, Any]:
    """The request as the control API reads it: method, path, headers as pairs, body_b64."""
    headers = [[k, v] for k, v in req.headers.items(multi=True) if k.lower() != "content-encoding"]
    return {"method": req.method, "path": req.path, "headers": headers, "body_b64": base64.b64encode(body).decode()}


def _parser(ref: str | None) -> Any:
    """A route's raw-request reading given as ``"module:function"`` (a service registered in the
    harness process only, e.g. a test's toy service); None: the registry's (or the generic one)."""
    if not ref:
        return None
    module, _, name = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except Exception as e:
        log.warning("harness: raw-request parser %s not importable (%s); using the generic reading", ref, e)
        return None


def _read(route: dict[str, Any], req: http.Request, body: bytes) -> tuple[str, dict[str, Any]]:
    """``action``, ``params`` of a proxied request, as the service's mock would call them."""
    path, _, query = req.path.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    headers = {k: v for k, v in req.headers.items()}
    try:
        if route.get("parse") is not None:
            return route["parse"](req.method, "/" + path.lstrip("/"), dict(pairs), headers, body)
        return action_and_params(route.get("service"), req.method, path, pairs, headers, body)
    except Exception as e:  # never fail the flow over a parse problem
        log.warning("harness: cannot read %s %s: %s", req.method, req.path, e)
        return path.strip("/") or "root", dict(pairs)


addons = [HarnessFaults()]
