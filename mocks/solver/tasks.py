"""The solving model: tasks, per-key thread accounting, seeded solve times, and unsolvable tasks.

Each task is solved by a timer on the event loop (no coroutine per task). Solve time, the answer and
whether the task is unsolvable depend only on (run seed, task number) and the config, so a run can
be replayed. A key's thread cap counts tasks being solved; in ``queue`` mode excess tasks wait.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import math
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

from mocks.solver.config import SolverConfig, TimeProfile
from mocks.solver.methods import Method, answer_for


def roll(seed: int, what: str, n: int) -> float:
    """A uniform float in [0, 1) fixed by (seed, purpose, task number)."""
    digest = hashlib.blake2b(f"{seed}|{what}|{n}".encode(), digest_size=8).digest()
    return (struct.unpack(">Q", digest)[0] >> 11) / float(1 << 53)


def id_base(seed: int) -> int:
    """Task ids look like production ones (11 digits) and differ per seed."""
    return 70_000_000_000 + int(roll(seed, "ids", 0) * 9_000_000_000)


@dataclass
class Task:
    id: int
    n: int
    key: str
    method: Method
    sitekey: str | None
    pingback: str | None
    enterprise: bool
    cells: bool
    created: float
    unsolvable: bool
    solve_s: float
    stalled: bool = False            # accepted, never finishes
    profile: int | None = None       # index of the time profile that applied
    state: str = "queued"            # queued | solving | solved | unsolvable
    started: float | None = None
    finished: float | None = None
    answer: str | None = None
    user_agent: str | None = None
    used: int = 0
    reports: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    handle: asyncio.TimerHandle | None = None

    @property
    def done(self) -> bool:
        return self.state in ("solved", "unsolvable")

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "n": self.n, "key": self.key, "method": self.method.name, "state": self.state,
                "stalled": self.stalled, "profile": self.profile,
                "sitekey": self.sitekey, "pingback": self.pingback, "solve_s": round(self.solve_s, 4),
                "answer": self.answer, "used": self.used, "reports": self.reports, "notes": self.notes}


Finished = Callable[[Task], None]
Accepted = Callable[[Task], None]


class TaskBook:
    def __init__(self, seed: int, config: Callable[[], SolverConfig], scale: Callable[[], float],
                 on_finish: Finished, on_accept: Accepted | None = None):
        self.seed = seed
        self._on_accept = on_accept
        self._config = config
        self._scale = scale
        self._on_finish = on_finish
        self.base = id_base(seed)
        self._n = 0                       # task numbers keep counting across resets (ids never reused)
        self.tasks: dict[int, Task] = {}
        self.by_answer: dict[str, Task] = {}
        self._working: collections.Counter[str] = collections.Counter()
        self._queues: dict[str, collections.deque[Task]] = collections.defaultdict(collections.deque)
        self._order: collections.deque[Task] = collections.deque()   # creation order, for TTL pruning
        self._forged = 0

    # --- accounting ------------------------------------------------------------------------
    def working(self, key: str) -> int:
        return self._working[key]

    def queued(self, key: str) -> int:
        return len(self._queues.get(key, ()))

    def unknown_id(self) -> int:
        """An id this run never issued (for forged pingbacks)."""
        self._forged += 1
        return self.base + 5_000_000_000 + self._forged

    # --- lifecycle -------------------------------------------------------------------------
    def create(self, key: str, method: Method, sitekey: str | None, pingback: str | None,
               enterprise: bool, cells: bool, queue: bool) -> Task:
        cfg = self._config()
        self._n += 1
        n = self._n
        loop = asyncio.get_running_loop()
        unsolvable = (n in cfg.unsolvable_tasks or (sitekey is not None and sitekey in cfg.unsolvable_sitekeys)
                      or (cfg.unsolvable_probability > 0 and roll(self.seed, "unsolvable", n)
                          < cfg.unsolvable_probability))
        task = Task(self.base + n, n, key, method, sitekey, pingback, enterprise, cells, loop.time(),
                    unsolvable, self._solve_time(cfg, n))
        self._apply_profile(task, cfg)
        self.tasks[task.id] = task
        if self._on_accept is not None:
            self._on_accept(task)
        self._order.append(task)
        self._prune(loop.time(), cfg)
        if queue:
            self._queues[key].append(task)
        else:
            self._start(task)
        return task

    def _profile(self, cfg: SolverConfig, task: Task) -> tuple[int, TimeProfile] | None:
        for i, p in enumerate(cfg.profiles):
            if p.tasks is not None and task.n not in p.tasks:
                continue
            if p.sitekeys is not None and task.sitekey not in p.sitekeys:
                continue
            if p.share < 1 and roll(self.seed, f"profile{i}", task.n) >= p.share:
                continue
            return i, p
        return None

    def _apply_profile(self, task: Task, cfg: SolverConfig) -> None:
        found = self._profile(cfg, task)
        if found is None:
            return
        task.profile, p = found
        if p.solve_min_s is not None:
            hi = p.solve_max_s if p.solve_max_s is not None else p.solve_min_s
            base = p.solve_min_s + roll(self.seed, "solve", task.n) * (hi - p.solve_min_s)
            task.solve_s = base * cfg.time_scale * self._scale()
        if p.outcome is not None:
            task.unsolvable = p.outcome == "unsolvable"
            task.stalled = p.outcome == "stalled"

    def _solve_time(self, cfg: SolverConfig, n: int) -> float:
        lo, hi = cfg.solve_min_s, cfg.solve_max_s
        u = roll(self.seed, "solve", n)
        if cfg.solve_distribution == "fixed":
            base = lo
        elif cfg.solve_distribution == "exponential":
            base = min(hi, lo - math.log(1.0 - u) * (hi - lo) / 3.0)
        else:
            base = lo + u * (hi - lo)
        return base * cfg.time_scale * self._scale()

    def _start(self, task: Task) -> None:
        loop = asyncio.get_running_loop()
        task.state = "solving"
        task.started = loop.time()
        self._working[task.key] += 1
        if not task.stalled:
            task.handle = loop.call_later(task.solve_s, self._finish, task)

    def _finish(self, task: Task) -> None:
        task.handle = None
        if task.state != "solving":
            return
        task.finished = asyncio.get_running_loop().time()
        self._working[task.key] -= 1
        if task.unsolvable:
            task.state = "unsolvable"
        else:
            task.state = "solved"
            task.answer = answer_for(task.method, self.seed, task.n, task.cells)
            if task.enterprise or task.method.user_agent:
                task.user_agent = self._config().user_agent
            self.by_answer[task.answer] = task
        try:
            self._on_finish(task)
        finally:
            self._release(task.key)

    def _release(self, key: str) -> None:
        queue = self._queues.get(key)
        cap = self.cap(key)
        while queue and self._working[key] < cap:
            self._start(queue.popleft())

    def cap(self, key: str) -> int:
        k = self._config().keys.get(key)
        return k.threads if k is not None else 0

    def get(self, task_id: int, now: float) -> Task | None:
        task = self.tasks.get(task_id)
        if task is None:
            return None
        if now - task.created > self._ttl(self._config()):
            return None
        return task

    def _ttl(self, cfg: SolverConfig) -> float:
        return cfg.task_ttl_s * cfg.time_scale * self._scale() if cfg.time_scale * self._scale() > 0 \
            else cfg.task_ttl_s

    def _prune(self, now: float, cfg: SolverConfig) -> None:
        ttl = self._ttl(cfg)
        while self._order and now - self._order[0].created > ttl and self._order[0].done:
            old = self._order.popleft()
            self.tasks.pop(old.id, None)   # its answer stays known to the protected site

    def clear(self) -> None:
        for task in self.tasks.values():
            if task.handle is not None:
                task.handle.cancel()
        self.tasks.clear()
        self.by_answer.clear()
        self._working.clear()
        self._queues.clear()
        self._order.clear()

    def summary(self) -> dict[str, int]:
        c = collections.Counter(t.state for t in self.tasks.values())
        return {s: c.get(s, 0) for s in ("queued", "solving", "solved", "unsolvable")}
