"""mitmproxy addon (loaded by ``mitmdump -s``): HTTP-level faults from the harness rules, every flow
recorded in the run journal.

For each request it asks the control API ``POST /decide`` (the run's seeded engine) with the link,
the service and the raw request (the control API lets the service's mock parse it, so ``action`` and
``params`` are exactly what the mock would compute), then:

- ``delay_ms``            waits before forwarding, ``delay_s`` of the decision: ``delay_ms`` scaled by the
                          run's time scale, as at the mock;
- ``hang``                never answers (holds the request for the decision's ``hang_s``, the host's hang
                          limit as at the mock, then closes);
- ``reset``               closes the client connection without an answer (mitmproxy kills the flow:
                          a close, not necessarily a TCP RST — use the ``reset_peer`` toxic for that);
- ``error`` / ``captcha_code`` / ``status`` / ``body``  answers itself with the reply the control API
                          built (the protocol's own error shape); upstream never sees the request;
- ``drop_response``       forwards, lets upstream process it, then kills the flow in the ``response``
                          hook — before a byte of the answer reaches the client;
- ``duplicate_request: N`` forwards, and once upstream has answered replays the request N more times
                          (mitmproxy client replay); the client gets the first answer.

Every flow becomes one ``proxy.flow`` journal event (``POST /journal``), written before the client
gets anything: ``link``, ``service``, ``fid``, ``method``, ``path``, ``action``, ``status`` (what the
client got; null if nothing), ``upstream_status``, ``rule``, ``outcome`` (forwarded, replaced,
dropped, duplicated, duplicate, reset, hang, upstream_error, client_error), ``ms``.

Options (``--set``): ``harness_control`` (control API URL), ``harness_token``, ``harness_routes``
(JSON ``{"<listen port>": {"link": ..., "service": ...}}``), ``harness_ready_file``,
``harness_hang_limit`` (only when a decision carries no ``hang_s``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Any

import aiohttp
from mitmproxy import ctx, http

log = logging.getLogger("harness.mitm")
META = "harness"


class HarnessFaults:
    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.routes: dict[int, dict[str, str]] = {}

    def load(self, loader: Any) -> None:
        loader.add_option("harness_control", str, "", "control API URL of the harness run")
        loader.add_option("harness_token", str, "", "control API bearer token")
        loader.add_option("harness_routes", str, "{}", "JSON: listen port -> {link, service}")
        loader.add_option("harness_ready_file", str, "", "written once the addon runs")
        loader.add_option("harness_hang_limit", str, "300", "seconds a 'hang' holds a request")

    def configure(self, updated: set[str]) -> None:
        if "harness_routes" in updated:
            self.routes = {int(k): v for k, v in json.loads(ctx.options.harness_routes or "{}").items()}

    async def running(self) -> None:
        headers = {"Authorization": f"Bearer {ctx.options.harness_token}"} if ctx.options.harness_token else {}
        self.session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=10))
        if ctx.options.harness_ready_file:
            with open(ctx.options.harness_ready_file, "w") as f:
                f.write("ready\n")

    async def done(self) -> None:
        if self.session is not None:
            await self.session.close()

    # --- helpers ---------------------------------------------------------------------------
    def _route(self, flow: http.HTTPFlow) -> dict[str, str]:
        port = getattr(flow.client_conn.proxy_mode, "custom_listen_port", None)
        if port is None and flow.client_conn.sockname:
            port = flow.client_conn.sockname[1]
        return self.routes.get(int(port or 0), {"link": None, "service": None})

    async def _control(self, path: str, payload: Any) -> Any:
        assert self.session is not None
        async with self.session.post(ctx.options.harness_control + path, json=payload) as r:
            data = await r.json(content_type=None)
            if r.status >= 300:
                raise RuntimeError(f"control {path}: {r.status} {data}")
            return data

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
        try:
            await self._control("/journal", event)
        except Exception as e:
            log.error("harness: could not journal flow %s: %s", flow.id, e)

    # --- hooks -----------------------------------------------------------------------------
    async def request(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.setdefault(META, {})
        if flow.is_replay == "request":
            return  # a duplicate we sent: no decision, journaled when it completes
        route = self._route(flow)
        req = flow.request
        body = req.get_content(strict=False) or b""
        headers = [[k, v] for k, v in req.headers.items(multi=True) if k.lower() != "content-encoding"]
        raw = {"method": req.method, "path": req.path, "headers": headers,
               "body_b64": base64.b64encode(body).decode()}
        try:
            answer = await self._control("/decide", {"service": route.get("service"), "link": route.get("link"),
                                                     "request": raw, "ref": flow.id})
        except Exception as e:  # control API gone: forward untouched rather than break the run
            log.error("harness: no decision for %s %s: %s", req.method, req.path, e)
            return
        meta["action"] = answer.get("action")
        decision = answer.get("decision")
        if not decision:
            return
        effect = decision.get("effect", {})
        meta.update(rule=decision["rule"], effect=effect)
        if decision.get("delay_s"):
            await asyncio.sleep(float(decision["delay_s"]))
        if effect.get("hang"):
            await self._journal(flow, "hang")
            await asyncio.sleep(float(decision.get("hang_s", ctx.options.harness_hang_limit)))
            flow.kill()
            return
        if effect.get("reset"):
            await self._journal(flow, "reset")
            flow.kill()
            return
        reply = decision.get("reply")
        if reply is not None:
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


addons = [HarnessFaults()]
