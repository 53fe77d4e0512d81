"""Evaluate a scenario's ``expect`` list over a journal → a Verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from harness.journal import Event
from harness.verdict.base import REGISTRY, Facts, Result


@dataclass
class Verdict:
    results: list[Result]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "invariants": [r.to_dict() for r in self.results]}


def parsed_expectations(expect: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    out = []
    for item in expect:
        (name, raw), = item.items()
        out.append((name, REGISTRY[name].params.model_validate(raw or {})))
    return out


def evaluate(expect: list[dict[str, Any]], events: Iterable[Event], now: float | None = None) -> Verdict:
    facts = Facts(events, now)
    results = []
    for name, params in parsed_expectations(expect):
        try:
            results.append(REGISTRY[name].check(facts, params))
        except Exception as e:  # an invariant bug must not hide the others' verdicts
            results.append(Result(name, False, f"invariant raised {type(e).__name__}: {e}"))
    return Verdict(results)


def settled(expect: list[dict[str, Any]], events: Iterable[Event], now: float) -> bool:
    """True when no invariant is still waiting for something (e.g. a solution not yet used)."""
    facts = Facts(events, now)
    for name, params in parsed_expectations(expect):
        inv = REGISTRY[name]
        if inv.settled is not None and not inv.settled(facts, params):
            return False
    return True


def waits(expect: list[dict[str, Any]]) -> bool:
    """Does any invariant of ``expect`` wait for something before it can judge (a ``settled`` hook)?"""
    return any(REGISTRY[name].settled is not None for name, _ in parsed_expectations(expect))
