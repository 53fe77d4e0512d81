"""The traffic driver: HTTP requests to the target built from flow templates, journaled with what
the target answered (``driver`` events: flow, n, status, latency, the vars it carried)."""

from __future__ import annotations

import asyncio
import inspect
import ssl
import time
from typing import Any, Callable

import aiohttp
import orjson
from harness.run.driver_event import driver_event
from harness.scenario.templates import render
from harness.scenario.model import Flow
from harness.scenario.variables import ControlAnswer, VarMaker, service_configs

BODY_LIMIT = 2048


class AsyncVarMaker:
    """A flow's variables (``harness.scenario.variables``), their control-API calls made with aiohttp."""

    def __init__(self, seed: int, control_url: str, session: aiohttp.ClientSession, configs: dict[str, Any]):
        self.maker = VarMaker(seed, configs)
        self.control_url = control_url
        self.session = session

    async def make(self, kind: str, spec: Any) -> Any:
        started = self.maker.start(kind, spec)
        if not inspect.isgenerator(started):
            return started
        answer = None
        while True:
            try:
                request = started.send(answer)
            except StopIteration as done:
                return done.value
            async with self.session.request(request.method, self.control_url + request.path,
                                            json=request.json) as resp:
                answer = ControlAnswer(resp.status, await resp.text())


def body_of(raw: bytes, content_type: str) -> Any:
    if "json" in content_type:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return raw[:BODY_LIMIT].decode("utf-8", "replace")


async def _cancel(tasks: list[asyncio.Task]) -> None:
    pending = [t for t in tasks if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


class Driver:
    def __init__(self, flows: list[Flow], base_ctx: dict[str, Any], record: Callable[[dict[str, Any]], Any],
                 seed: int, time_scale: float = 1.0):
        self.flows = flows
        self.base_ctx = base_ctx
        self.record = record
        self.seed = seed
        self.time_scale = time_scale
        self.sent = 0
        self.failed = 0

    async def run(self) -> None:
        ca = self.base_ctx.get("run", {}).get("tls_ca")
        ssl_ctx = None
        if ca:  # flows may call an https mock directly: trust the run's CA next to the public roots
            ssl_ctx = ssl.create_default_context()
            ssl_ctx.load_verify_locations(ca)
        connector = aiohttp.TCPConnector(limit=0, force_close=False, ssl=ssl_ctx if ssl_ctx else True)
        async with aiohttp.ClientSession(connector=connector) as session:
            configs = service_configs(self.base_ctx)
            control = self.base_ctx.get("control", {}).get("url", "")
            await asyncio.gather(*(self._flow(i, f, session, AsyncVarMaker(self.seed * 1000 + i, control, session,
                                                                            configs))
                                   for i, f in enumerate(self.flows)))

    async def _flow(self, index: int, flow: Flow, session: aiohttp.ClientSession, vars_: AsyncVarMaker) -> None:
        if flow.start:
            await asyncio.sleep(flow.start * self.time_scale)
        t0 = time.monotonic()
        sem = asyncio.Semaphore(flow.concurrency)
        tasks: list[asyncio.Task] = []
        n = 0
        limit = flow.count if flow.count is not None else (None if flow.duration is not None else 1)
        try:
            while limit is None or n < limit:
                if flow.duration is not None and time.monotonic() - t0 >= flow.duration * self.time_scale:
                    break
                if flow.rate:
                    due = t0 + n / flow.rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await sem.acquire()
                n += 1
                values = {name: await vars_.make(*next(iter(spec.items()))) for name, spec in flow.vars.items()}
                task = asyncio.create_task(self._one(flow, n, values, session))
                task.add_done_callback(lambda _t: sem.release())
                tasks.append(task)
            if tasks:
                await asyncio.gather(*tasks)
        finally:  # cut short (SIGINT, an error): requests in flight stop with their flow, unrecorded,
            await _cancel(tasks)  # never left to fail against a closed session or stopped mocks

    async def _one(self, flow: Flow, n: int, values: dict[str, Any], session: aiohttp.ClientSession) -> None:
        ctx = {**self.base_ctx, **values, "n": n, "flow": flow.name}
        req = flow.request
        url = render(req.url, ctx) if req.url else self.base_ctx["target"]["url"] + render(req.path, ctx)
        kwargs: dict[str, Any] = {"headers": render(req.headers, ctx) or None,
                                  "params": {k: str(v) for k, v in render(req.query, ctx).items()} or None}
        if req.json_body is not None:
            kwargs["json"] = render(req.json_body, ctx)
        elif req.form is not None:
            kwargs["data"] = {k: str(v) for k, v in render(req.form, ctx).items()}
        event = driver_event(flow, n, url, values)
        start = time.monotonic()
        try:
            async with session.request(req.method, url, timeout=aiohttp.ClientTimeout(total=flow.timeout),
                                       **kwargs) as resp:
                raw = await resp.read()
                event.update(status=resp.status, response=body_of(raw, resp.headers.get("Content-Type", "")))
        except asyncio.TimeoutError:
            event.update(status=None, error="timeout")
        except (aiohttp.ClientError, OSError) as e:
            event.update(status=None, error=f"{type(e).__name__}: {e}"[:300])
            if isinstance(e, aiohttp.ClientConnectorError):
                event["unreached"] = True   # never connected: the target decided nothing
        event["latency_ms"] = round((time.monotonic() - start) * 1000, 3)
        self.sent += 1
        if event.get("status") is None or event["status"] >= 400:
            self.failed += 1
        self.record(event)
