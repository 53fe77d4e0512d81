"""``driver`` events from locust users into the run journal: batched ``POST {control}/journal``.

One batcher per locust process. Events queue in memory and a greenlet posts them every
``interval`` seconds (so a driver event's journal time is at most about that late); ``close`` posts
what is left. A batch the control API refused or never answered is retried, then counted as lost.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import requests
from gevent.event import Event
from gevent.lock import BoundedSemaphore

log = logging.getLogger("harness.load")

RETRIES = 3


class DriverJournal:
    def __init__(self, control_url: str, interval: float = 0.05, max_batch: int = 1000,
                 headers: dict[str, str] | None = None):
        self.url = control_url.rstrip("/") + "/journal"
        self.interval = interval
        self.max_batch = max_batch
        self.session = requests.Session()
        self.session.headers.update(headers or {})
        self.queue: list[dict[str, Any]] = []
        self.requests = 0     # driver events handed in (= requests locust sent)
        self.journaled = 0    # events the control API confirmed
        self.lost = 0         # events given up on
        self._lock = BoundedSemaphore()
        self._loop: gevent.Greenlet | None = None
        self._stop = Event()

    def start(self) -> None:
        if self._loop is None:
            self._stop.clear()
            self._loop = gevent.spawn(self._run)

    def add(self, event: dict[str, Any]) -> None:
        self.requests += 1
        self.queue.append(event)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            while self.queue:
                batch, self.queue = self.queue[:self.max_batch], self.queue[self.max_batch:]
                self._post(batch)

    def _post(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(RETRIES):
            try:
                resp = self.session.post(self.url, json=batch, timeout=10)
                if resp.status_code == 201:
                    self.journaled += len(resp.json().get("seqs", ()))
                    return
                why = f"HTTP {resp.status_code}: {resp.text[:200]}"
            except (requests.RequestException, ValueError) as e:
                why = f"{type(e).__name__}: {e}"
            log.warning("journal POST failed (attempt %d): %s", attempt + 1, why)
            time.sleep(0.2 * (attempt + 1))
        self.lost += len(batch)

    def close(self) -> None:
        if self._loop is not None:
            self._stop.set()  # never kill it: a batch in flight would be lost
            self._loop.join(timeout=60)
            self._loop = None
        self.flush()

    def figures(self) -> dict[str, int]:
        return {"requests": self.requests, "journaled": self.journaled, "lost": self.lost,
                "queued": len(self.queue)}
