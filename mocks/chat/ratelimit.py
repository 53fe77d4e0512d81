"""Per-(ServiceName, Command) request-rate limits over a sliding 1 s window, and alarm debouncing.

``observed`` counts every authenticated request to the command in the last second (admitted or
refused) — that is what ``Alert.RequestOverLimit`` reports as ``Request``. Admission counts only
admitted requests, so a client that keeps hammering gets through again at the limit's pace.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable, Hashable

WINDOW_S = 1.0


class SlidingWindow:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._seen: dict[Hashable, deque[float]] = {}
        self._admitted: dict[Hashable, deque[float]] = {}

    @staticmethod
    def _trim(q: deque[float], now: float) -> None:
        edge = now - WINDOW_S
        while q and q[0] <= edge:
            q.popleft()

    def hit(self, key: Hashable, limit: int | None) -> tuple[bool, int]:
        """Count one request; return (admitted, observed requests in the last second incl. this one)."""
        now = self._clock()
        seen = self._seen.setdefault(key, deque())
        self._trim(seen, now)
        seen.append(now)
        admitted = self._admitted.setdefault(key, deque())
        self._trim(admitted, now)
        if limit is not None and len(admitted) >= limit:
            return False, len(seen)
        admitted.append(now)
        return True, len(seen)

    def observed(self, key: Hashable) -> int:
        q = self._seen.get(key)
        if not q:
            return 0
        self._trim(q, self._clock())
        return len(q)

    def clear(self) -> None:
        self._seen.clear()
        self._admitted.clear()


class Debounce:
    """At most one event per key per ``interval`` seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._last: dict[Hashable, float] = {}

    def due(self, key: Hashable, interval: float) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < interval:
            return False
        self._last[key] = now
        return True

    def clear(self) -> None:
        self._last.clear()
