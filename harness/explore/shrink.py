"""Shrink a failing fault timeline to a minimal one that still fails the same way.

Greedy, to a fixpoint: remove one fault at a time; then replace each fault by a simpler version
(``faults.simpler``: shorter windows and delays, lower counts and probabilities, plainer effects,
an earlier start). A step is kept only when ``still_fails`` says so — the caller re-runs the
candidate several times and decides by the observed failure rate, so a flaky failure does not
steer the shrink. Every kept step lowers a well-founded measure, so the shrink ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable

from harness.explore.faults import Fault, simpler

StillFails = Callable[[list[Fault]], Awaitable[bool]]


@dataclass
class Shrunk:
    faults: list[Fault]
    steps: int = 0          # simplifications kept
    checks: int = 0         # candidates tried
    complete: bool = True   # False: stopped early (budget, Ctrl-C); ``faults`` still fails
    history: list[str] = field(default_factory=list)


class Stop(Exception):
    """Raised by ``still_fails`` to end the shrink early, keeping the smallest failing so far."""


async def shrink(faults: list[Fault], still_fails: StillFails,
                 on_step: Callable[[Shrunk], None] | None = None) -> Shrunk:
    out = Shrunk(list(faults))

    async def attempt(trial: list[Fault], what: str) -> bool:
        out.checks += 1
        if on_step is not None:
            on_step(out)
        if not await still_fails(trial):
            return False
        out.faults = trial
        out.steps += 1
        out.history.append(what)
        return True

    try:
        changed = True
        while changed:
            changed = False
            i = 0
            while i < len(out.faults) and len(out.faults) > 1:
                trial = out.faults[:i] + out.faults[i + 1:]
                if await attempt(trial, f"removed {out.faults[i].signature}"):
                    changed = True
                else:
                    i += 1
            for i in range(len(out.faults)):
                for smaller in simpler(out.faults[i]):
                    if await attempt(out.faults[:i] + [smaller] + out.faults[i + 1:],
                                     f"simplified to {smaller.describe()}"):
                        changed = True
                        break
    except Stop:
        out.complete = False
    return out
