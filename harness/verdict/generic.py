"""Generic invariants over what the traffic driver saw and over the journal itself."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from harness.durations import Duration
from harness.verdict.closest import closest, sentence
from harness.verdict.base import (Facts, Params, Result, brief, event_matches, invariant, not_exercised,
                                  undeclared_in)


class SucceededParams(Params):
    flow: str | None = None
    status: list[int] = Field(default_factory=lambda: list(range(200, 300)))


@invariant("all_requests_succeeded", SucceededParams)
def all_requests_succeeded(facts: Facts, p: SucceededParams) -> Result:
    """Every request the driver sent (of ``flow``) got one of ``status``."""
    sent = facts.driver(p.flow)
    if not sent:
        return not_exercised("all_requests_succeeded", "the driver sent no request")
    bad = [brief(d, "flow", "n", "status", "error", "latency_ms") for d in sent if d.get("status") not in p.status]
    return Result("all_requests_succeeded", not bad, f"{len(sent) - len(bad)} of {len(sent)} succeeded", bad,
                  {"sent": len(sent), "failed": len(bad)})


class LatencyParams(Params):
    flow: str | None = None
    p: float = Field(default=99, gt=0, le=100)
    max: Duration


@invariant("latency_percentile", LatencyParams)
def latency_percentile(facts: Facts, p: LatencyParams) -> Result:
    """The p-th percentile of driver request latency is at most ``max``."""
    lat = sorted((d.get("latency_ms") or 0.0) for d in facts.driver(p.flow))
    if not lat:
        return not_exercised("latency_percentile", "the driver sent no request")
    k = min(len(lat) - 1, max(0, int(round(p.p / 100 * len(lat) + 0.5)) - 1))
    value = lat[k]
    ok = value <= p.max * 1000
    return Result("latency_percentile", ok, f"p{p.p:g} = {value:.1f} ms (max {p.max * 1000:.0f} ms)",
                  [] if ok else [{"p": p.p, "latency_ms": value, "max_ms": p.max * 1000}],
                  {"p": p.p, "latency_ms": round(value, 3), "n": len(lat)})


class JournalCountParams(Params):
    where: dict[str, Any] = Field(description="dotted field → value / {glob} / {regex}, e.g. {kind: callback}")
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @field_validator("where")
    @classmethod
    def _declared(cls, where: dict[str, Any]) -> dict[str, Any]:
        problem = undeclared_in(where)
        if problem:
            raise ValueError(problem)
        return where


@invariant("journal_count", JournalCountParams)
def journal_count(facts: Facts, p: JournalCountParams) -> Result:
    """The number of journal events matching ``where`` is within [min, max]."""
    hits = [e for e in facts.events if event_matches(e, p.where)]
    n = len(hits)
    ok = (p.min is None or n >= p.min) and (p.max is None or n <= p.max)
    evidence = [] if ok else [brief(e) for e in hits[:10]] or [{"matched": 0}]
    summary = f"{n} events match {p.where} (min {p.min}, max {p.max})"
    near = closest(facts.events, p.where) if not ok and not hits else None
    if near is not None:  # say what was seen instead
        evidence = [{"matched": 0, **near}]
        summary += f"; {sentence(near)}"
    return Result("journal_count", ok, summary, evidence, {"matched": n})
