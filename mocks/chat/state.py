"""What the Chat mock remembers: imported accounts, groups, delivered messages, dedup keys."""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

MESSAGES_KEPT = 10_000


@dataclass
class Group:
    group_id: str
    type: str = "Public"
    name: str = ""
    owner: str | None = None
    next_seq: int = 1


@dataclass
class ChatState:
    seed: int = 0
    clock: Callable[[], float] = time.monotonic
    accounts: set[str] = field(default_factory=set)
    groups: dict[str, Group] = field(default_factory=dict)
    messages: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MESSAGES_KEPT))
    _seen: dict[Hashable, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _inserts: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # --- dedup ---------------------------------------------------------------------------------
    def duplicate_of(self, key: Hashable, window_s: float) -> dict[str, Any] | None:
        """The first message's answer fields if ``key`` was accepted less than ``window_s`` ago."""
        hit = self._seen.get(key)
        if hit is None or self.clock() - hit[0] >= window_s:
            return None
        return hit[1]

    def remember(self, key: Hashable, answer: dict[str, Any]) -> None:
        self._seen[key] = (self.clock(), answer)
        self._inserts += 1
        if self._inserts % 1000 == 0:
            edge = self.clock() - 3600
            self._seen = {k: v for k, v in self._seen.items() if v[0] > edge}

    def forget(self, key: Hashable) -> None:
        self._seen.pop(key, None)

    # --- groups --------------------------------------------------------------------------------
    def new_group_id(self) -> str:
        while True:
            gid = "@TGS#" + "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(9))
            if gid not in self.groups:
                return gid

    def group(self, group_id: str) -> Group:
        g = self.groups.get(group_id)
        if g is None:
            g = self.groups[group_id] = Group(group_id)
        return g
