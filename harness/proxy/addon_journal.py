"""The mitmproxy addon's journal: its events reach the run journal in the order they were made, in
batches (``POST /decide/journal``), without a call per flow.

``add(event)`` queues an event; a background task sends whatever is queued ``linger_s`` after the first
event (so at a low rate a batch still holds a few flows), one batch at a time (while a batch is on its
way the next one fills up, so the batches grow with the load). ``flush()`` sends
everything queued now and returns once the host has written it: the addon awaits it before a faulted
flow's answer leaves (or a hang / reset / drop ends it), so a fault is journaled before the client
sees its effect; ``close()`` (the addon's ``done``) stops the task and sends the rest. A batch the
host could not take is sent again (``retries`` times, ``retry_s`` apart) before it is given up, logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

log = logging.getLogger("harness.mitm")

Post = Callable[[list[dict[str, Any]]], Awaitable[None]]


class JournalSender:
    def __init__(self, post: Post, *, linger_s: float = 0.02, batch_max: int = 500, retries: int = 20,
                 retry_s: float = 0.1):
        self._post, self.linger_s, self.batch_max = post, linger_s, batch_max
        self.retries, self.retry_s = retries, retry_s
        self.pending: list[dict[str, Any]] = []
        self.queued = 0  # events queued so far (a caller compares it to see whether a call queued any)
        self.lost = 0
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def add(self, event: dict[str, Any]) -> None:
        self.pending.append(event)
        self.queued += 1
        self._wake.set()

    async def flush(self) -> None:
        """Send everything queued so far, in order; returns once written (or given up)."""
        async with self._lock:
            while self.pending:
                batch = self.pending[:self.batch_max]
                del self.pending[:len(batch)]
                await asyncio.shield(self._send(batch))  # a cancelled caller does not lose the batch

    async def close(self) -> None:
        """Send the rest and stop the background task (the addon's ``done``)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(self.retries + 1):
            try:
                await self._post(batch)
                return
            except ValueError as e:  # refused (400): sending it again cannot help
                log.error("harness: journal refused %d event(s): %s", len(batch), e)
                break
            except Exception as e:
                if attempt == self.retries:
                    log.error("harness: could not journal %d event(s): %s", len(batch), e)
                    break
                await asyncio.sleep(self.retry_s)
        self.lost += len(batch)

    async def _run(self) -> None:
        while not self._closing:
            await self._wake.wait()
            if self.linger_s and not self._closing:
                await asyncio.sleep(self.linger_s)
            self._wake.clear()
            await self.flush()
