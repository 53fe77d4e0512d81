"""How hard the integration leans on a service for one user action: a bounded number of calls, and
no retry straight after a failed answer. Judged from the journal only: a call to the service (a
``request`` event at the mock) belongs to the user action (a ``driver`` request) that was in
flight when it arrived; a call during two overlapping user actions is ambiguous and not judged, and
so is a call that arrived while the integration's link to the service carried a fault: a toxic holds
calls in flight and lets them go together (a latency toxic's calls all arrive when it is removed,
inside whichever action is in flight then), so when a call arrived no longer says whose it was."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from harness.durations import Duration
from harness.faults.rules import Pattern, pattern_matches
from harness.journal import Event
from harness.verdict.base import Facts, Params, Result, brief, invariant, not_exercised
from harness.verdict.link_faults import EDGE_S as LINK_EDGE_S
from harness.verdict.link_faults import link_fault_during

EDGE_S = 0.005   # a call journaled this close to a user action's start or end still belongs to it


class CallsParams(Params):
    service: str = Field(description="the service whose calls are counted")
    action: Pattern | None = Field(default=None, description="only these calls (value, glob or regex)")
    flow: str | None = Field(default=None, description="only these user actions (driver flow)")
    max_calls: int | None = Field(default=None, ge=1, description="calls allowed per user action")
    min_backoff: Duration = Field(default=0.0, description="a repeated call sooner than this after the "
                                  "previous one's answer is an immediate retry")


def _span(d: Event) -> tuple[float, float]:
    return d.t - (d.get("latency_ms") or 0.0) / 1000.0, d.t


def calls_by_action(facts: Facts, p: CallsParams) -> tuple[dict[int, list[Event]], list[Event], int, int]:
    """(driver seq → its calls in time order, the driver events, calls that were ambiguous, calls that
    arrived while the link carried a fault)."""
    actions = facts.driver(p.flow)
    spans = [(d, *_span(d)) for d in actions]
    calls = [e for e in facts.of("request", p.service)
             if p.action is None or pattern_matches(p.action, e.action)]
    out: dict[int, list[Event]] = {d.seq: [] for d in actions}
    ambiguous = held = 0
    link = f"integration->{p.service}"
    for call in calls:
        if link_fault_during(facts, call.t - LINK_EDGE_S, call.t, link):
            held += 1   # (a toxic's flush may reach the mock just after its removal is journaled)
            continue
        # the action in flight; only when none was, one that started or ended within EDGE_S (back-to-back
        # actions of one flow are each within EDGE_S of the next: the edge alone would make them ambiguous)
        owners = [d for d, lo, hi in spans if lo <= call.t <= hi] or [
            d for d, lo, hi in spans if lo - EDGE_S <= call.t <= hi + EDGE_S]
        if len(owners) == 1:
            out[owners[0].seq].append(call)
        elif owners:
            ambiguous += 1
    return out, actions, ambiguous, held


def _answered_at(facts: Facts, call: Event) -> float:
    response = facts.response_to(call)
    return response.t if response is not None else call.t


@invariant("calls_per_action_bounded", CallsParams)
def calls_per_action_bounded(facts: Facts, p: CallsParams) -> Result:
    """Each user action made at most ``max_calls`` calls to ``service``, and never repeated a call
    sooner than ``min_backoff`` after the previous one was answered (no immediate retries)."""
    by_action, actions, ambiguous, held = calls_by_action(facts, p)
    judged = {seq: calls for seq, calls in by_action.items() if calls}
    if not judged:
        why = (f"every call to {p.service} during a user action ({held}) arrived while the link carried a fault"
               if held else f"no user action called {p.service}")
        return not_exercised("calls_per_action_bounded", why)
    flows = {d.seq: d for d in actions}
    evidence: list[dict[str, Any]] = []
    worst, retries = 0, 0
    for seq, calls in judged.items():
        worst = max(worst, len(calls))
        gaps = [round(b.t - _answered_at(facts, a), 3) for a, b in zip(calls, calls[1:])]
        quick = [g for g in gaps if g < p.min_backoff]
        retries += len(quick)
        if (p.max_calls is not None and len(calls) > p.max_calls) or quick:
            evidence.append({**brief(flows[seq], "flow", "n", "status", "latency_ms"), "calls": len(calls),
                             "gaps_after_answer_s": gaps, "calls_seen": [brief(c, "rid") for c in calls[:10]]})
    summary = (f"{len(judged)} user actions called {p.service}: at most {worst} calls for one "
               f"(max {p.max_calls}), {retries} immediate retries (< {p.min_backoff:g}s after an answer)")
    if ambiguous:
        summary += f"; {ambiguous} calls during overlapping actions not judged"
    if held:
        summary += f"; {held} calls that arrived while the link to {p.service} carried a fault not judged"
    return Result("calls_per_action_bounded", not evidence, summary, evidence,
                  {"actions": len(judged), "max_calls_seen": worst, "immediate_retries": retries,
                   "ambiguous": ambiguous, "held_by_link": held})
