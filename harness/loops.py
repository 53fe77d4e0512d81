"""The event loop the harness runs on: uvloop (libuv, in C) when it is installed, else asyncio's own.

The mocks spend much of each request in the event loop itself (socket reads and writes, callbacks);
uvloop does that work with about a fifth less CPU per request (bench/run.py). ``HARNESS_LOOP=asyncio``
selects asyncio's selector loop, e.g. to rule the loop out when hunting a bug."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Coroutine

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
