"""The run-level verdict: PASS, FAIL, INCONCLUSIVE or INTERRUPTED (ERROR: the run could not be
carried out), and its exit code.

- PASS: every invariant held and was exercised, every rule fired at least once (unless it says
  ``optional: true``) and every timeline step played;
- FAIL: an exercised invariant did not hold (FAIL wins over INCONCLUSIVE);
- INCONCLUSIVE: nothing failed, but the run did not test what it claims: each reason one line;
- INTERRUPTED: SIGINT / SIGTERM stopped the run; the verdict so far is kept, marked incomplete.

Rule firing and step playing come from the journal (``rule_added``, ``decision`` with ``fired``,
``toxic`` added / ``link`` down, ``step`` ``timeline.*``); the plan's steps from the scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

PASS, FAIL, INCONCLUSIVE, INTERRUPTED, ERROR = "PASS", "FAIL", "INCONCLUSIVE", "INTERRUPTED", "ERROR"
EXIT_CODES = {PASS: 0, FAIL: 1, ERROR: 2, INCONCLUSIVE: 3}
SIGNAL_EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}
# the state a suite of runs reports: the most severe of its runs'
SEVERITY = (PASS, INCONCLUSIVE, ERROR, FAIL, INTERRUPTED)


@dataclass
class RunVerdict:
    state: str
    reasons: list[str] = field(default_factory=list)   # why not PASS, one line each
    so_far: str | None = None                          # INTERRUPTED: the verdict of the journal so far
    interrupted_by: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == PASS

    @property
    def complete(self) -> bool:
        return self.state != INTERRUPTED

    @property
    def exit_code(self) -> int:
        if self.state == INTERRUPTED:
            return SIGNAL_EXIT_CODES.get(self.interrupted_by or "", 130)
        return EXIT_CODES[self.state]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "complete": self.complete, "reasons": self.reasons}
        if self.state == INTERRUPTED:
            out.update(interrupted_by=self.interrupted_by, verdict_so_far=self.so_far)
        return out


def coverage_gaps(events: Iterable[Any], steps: list[Any]) -> list[str]:
    """What the run was meant to do and did not: rules that never fired, steps that never played."""
    rules: list[dict[str, Any]] = []        # one entry per rule_added (an id may be reused after a clear)
    current: dict[str, dict[str, Any]] = {}
    played: set[int] = set()
    skipped: dict[int, str] = {}
    for e in events:
        if e.kind == "rule_added":
            entry = {"id": e.get("rule"), "optional": bool((e.get("spec") or {}).get("optional")),
                     "matched": 0, "fired": False}
            rules.append(entry)
            current[entry["id"]] = entry
        elif e.kind == "decision" and e.get("rule") in current:
            entry = current[e.get("rule")]
            entry["matched"] += 1
            entry["fired"] = entry["fired"] or bool(e.get("fired"))
        elif ((e.kind == "toxic" and e.get("op") == "added") or (e.kind == "link" and e.get("op") == "down")) \
                and e.get("rule") in current:
            current[e.get("rule")]["fired"] = True
        elif e.kind == "step" and str(e.get("step", "")).startswith("timeline.") and e.get("index") is not None:
            played.add(int(e.get("index")))
        elif e.kind == "step" and e.get("step") == "timeline_skipped" and e.get("index") is not None:
            skipped[int(e.get("index"))] = str(e.get("why") or "skipped")
    gaps = []
    for r in rules:
        if r["fired"] or r["optional"]:
            continue
        if r["matched"]:
            gaps.append(f"rule `{r['id']}` matched {r['matched']} time(s) but never fired")
        else:
            gaps.append(f"rule `{r['id']}` never matched")
    for i, step in enumerate(steps):
        if i not in played:
            why = f": {skipped[i]}" if i in skipped else ""
            gaps.append(f"timeline step {i + 1} ({_describe(step)}) never played{why}")
    return gaps


def _describe(step: Any) -> str:
    when = f"at {step.at:g}s" if getattr(step, "at", None) is not None else \
        ("after a trigger" if getattr(step, "after", None) is not None else "")
    return " ".join(x for x in (getattr(step, "action", "?"), when) if x)


def judge(invariants: Any, gaps: list[str], error: str | None = None,
          interrupted_by: str | None = None) -> RunVerdict:
    """``invariants``: the ``Verdict`` of the expect list (None when the run never got that far)."""
    results = list(invariants.results) if invariants is not None else []
    failed = [r for r in results if not r.ok and r.exercised]
    unexercised = [f"`{r.name}` {r.summary}" for r in results if not r.ok and not r.exercised]
    reasons = gaps + unexercised
    if error is not None:
        state, reasons = ERROR, [f"run error: {error}"] + reasons
    elif failed:
        state = FAIL
        reasons = [f"`{r.name}` failed: {r.summary}" for r in failed] + reasons
    else:
        state = INCONCLUSIVE if reasons else PASS
    if interrupted_by is not None:
        return RunVerdict(INTERRUPTED, [f"interrupted by {interrupted_by}: the verdict so far is {state}, "
                                        "on an incomplete run"] + reasons, so_far=state,
                          interrupted_by=interrupted_by)
    return RunVerdict(state, reasons)


def worst(states: Iterable[str]) -> str:
    return max(states, key=SEVERITY.index, default=PASS)
