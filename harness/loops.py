"""The event loop the harness runs on: uvloop (libuv, in C) when it is installed, else asyncio's own.

The mocks spend much of each request in the event loop itself (socket reads and writes, callbacks);
uvloop does that work with about a fifth less CPU per request (bench/run.py). ``HARNESS_LOOP=asyncio``
selects asyncio's selector loop, e.g. to rule the loop out when hunting a bug. Accepting connections is
not left to the loop: uvloop's libuv accepts one per loop iteration, too few under a burst, so the
listeners accept in batches themselves on either loop (harness/accept.py)."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Callable, Coroutine

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without it
    uvloop = None  # type: ignore[assignment]


def name() -> str:
    return "uvloop" if uvloop is not None and os.environ.get("HARNESS_LOOP", "uvloop") != "asyncio" else "asyncio"


def new_event_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if name() == "uvloop" else asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run`` on ``new_event_loop()`` (same Ctrl-C handling: the main task is cancelled)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


class LoopThread:
    """An event loop running in a daemon thread, for synchronous callers (pytest fixtures, locust).
    ``call(fn, *args)`` runs the coroutine ``fn(*args)`` on it and returns its result. ``stop()``
    cancels and awaits whatever is left (a client that hung up mid-request leaves an aiohttp handler
    task behind), as ``asyncio.run`` does: a task still pending on a closed loop is reported as
    "Task was destroyed but it is pending!" whenever the garbage collector finds it, later."""

    def __init__(self, name: str):
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def call(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, timeout: float | None = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(*args), self.loop).result(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        if self._thread.is_alive():
            try:
                self.call(_finish_tasks, timeout=10)
            except Exception:
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        self.loop.close()


async def _finish_tasks() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5)
    await asyncio.get_running_loop().shutdown_asyncgens()
