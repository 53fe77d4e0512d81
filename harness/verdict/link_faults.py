"""When a link carried a fault: down, or a toxic on it, or (``service``) that service stopped by the
timeline. Answered from a time index (two bisects per question, not a walk of the journal: a load run
judges thousands of requests), built once per evaluation and link."""

from __future__ import annotations

import bisect
from typing import Any

from harness.verdict.base import Facts

STOPPED = {"service_stopped": "down", "service_started": "up"}   # timeline stop_service / start_service
# a cut is journaled just after it is made: a client may see its effect (its call cut off, its user
# let in) a moment before the event
EDGE_S = 0.05


def apply_fault_change(active: set[str], e: Any, link: str, service: str | None) -> bool:
    """Apply what event ``e`` does to the faults active on ``link`` (and to ``service`` being stopped,
    if given): a link down / up, a toxic added / removed, a timeline stop / start. False for an event
    that changes none of them."""
    stopped = service is not None and e.kind == "step" and e.get("service") == service and e.get("step") in STOPPED
    if not stopped and (e.get("link") != link or e.kind not in ("link", "toxic")):
        return False
    key = "stopped" if stopped else "down" if e.kind == "link" else str(e.get("rule"))
    op = STOPPED[e.get("step")] if stopped else e.get("op")
    if op in ("down", "added"):
        active.add(key)
    elif op in ("up", "removed"):
        active.discard(key)
    return True


class LinkFaults:
    """Whether a fault was active after each event that changes it, in journal order."""

    def __init__(self, facts: Facts, link: str, service: str | None):
        active: set[str] = set()
        self.times: list[float] = []
        self.active_after: list[bool] = []
        for e in facts.events:
            if apply_fault_change(active, e, link, service):
                self.times.append(e.t)
                self.active_after.append(bool(active))
        n = len(self.active_after)
        self.next_active = [n] * (n + 1)  # the first index >= i at which a fault is active after the event
        for i in range(n - 1, -1, -1):
            self.next_active[i] = i if self.active_after[i] else self.next_active[i + 1]

    def during(self, start: float, end: float) -> bool:
        i = bisect.bisect_left(self.times, start)          # the first change at or after ``start``
        if i > 0 and self.active_after[i - 1]:               # active when the span began
            return True
        return self.next_active[i] < bisect.bisect_right(self.times, end + EDGE_S)  # or became so within it


def link_fault_during(facts: Facts, start: float, end: float, link: str, service: str | None = None) -> bool:
    """Was ``link`` down or carrying a toxic, or ``service`` stopped, at any moment of [start, end]
    (toxic driver events, the timeline's service steps)?"""
    return facts.view(f"link_faults|{link}|{service}", lambda f: LinkFaults(f, link, service)).during(start, end)
