"""A small pingback receiver (aiohttp) for tests, the benchmark and hand runs: records every request
it gets and answers ``OK`` — or a configured status, after a configured delay.

``PingbackReceiver`` runs on the caller's event loop; ``ReceiverThread`` runs one in a background
thread for synchronous code (``with ReceiverThread() as r: r.url``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from harness.loops import LoopThread


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    t: float = field(default_factory=time.monotonic)
    peer: str = ""               # the sender's host:port: one per connection

    @property
    def fields(self) -> dict[str, str]:
        return {**self.query, **self.form}


class PingbackReceiver:
    def __init__(self, status: int = 200, delay_s: float = 0.0, body: str = "OK", keep: bool = True):
        self.status, self.delay_s, self.body, self.keep = status, delay_s, body, keep
        self.seen: list[Received] = []
        self.count = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        self.count += 1
        if self.keep:
            arrived = time.monotonic()
            peer = request.transport.get_extra_info("peername") if request.transport else None
            form = {}
            if request.body_exists:
                form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
            self.seen.append(Received(request.method, request.path, dict(request.query), form, arrived,
                                      f"{peer[0]}:{peer[1]}" if peer else ""))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=self.status, text=self.body)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/pingback"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def ids(self) -> list[str]:
        return [r.fields.get("id", "") for r in self.seen]


class ReceiverThread:
    def __init__(self, **kw: Any):
        self.receiver = PingbackReceiver(**kw)
        self._loop = LoopThread("pingback-receiver")

    def __enter__(self) -> "ReceiverThread":
        self._loop.start()
        try:
            self._loop.call(self.receiver.start, timeout=10)
        except BaseException:
            self._loop.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._loop.call(self.receiver.stop, timeout=10)
        finally:
            self._loop.stop()

    @property
    def url(self) -> str:
        return self.receiver.url

    @property
    def seen(self) -> list[Received]:
        return self.receiver.seen

    def ids(self) -> list[str]:
        return self.receiver.ids()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.receiver.seen) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.receiver.seen)
