"""The dead-letter queue: results that could not be stored (database down) or used (site unreachable)
wait here, in memory, and are reprocessed every ``DLQ_RETRY_INTERVAL``. One entry per task id.

Held in memory on purpose: it is what saves a result while Redis is away. If the process dies too,
the task is still in Redis ``sc:pending`` (the store never happened) and fallback polling fetches it
again after the restart.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Entry:
    task: str
    token: str
    stage: str            # store | use
    error: str
    parked_at: float = field(default_factory=time.time)
    attempts: int = 0


class DeadLetterQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self.parked_total = 0
        self.recovered_total = 0

    def park(self, task: str, token: str, stage: str, error: str) -> bool:
        """False if the task is already parked (a duplicate delivery while the database is down)."""
        with self._lock:
            if task in self._entries:
                return False
            self._entries[task] = Entry(task, token, stage, error)
            self.parked_total += 1
            return True

    def __contains__(self, task: str) -> bool:
        with self._lock:
            return task in self._entries

    def snapshot(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def done(self, task: str) -> None:
        with self._lock:
            if self._entries.pop(task, None) is not None:
                self.recovered_total += 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {"size": len(self._entries), "parked_total": self.parked_total,
                    "recovered_total": self.recovered_total,
                    "entries": [{"task": e.task, "stage": e.stage, "error": e.error, "attempts": e.attempts}
                                for e in self._entries.values()]}
