"""Invariants: pure functions of the run journal (which includes what the traffic driver saw).

Each invariant is registered with a pydantic parameter model, so ``expect:`` entries in scenario
files are validated like the rest of the file, and returns a ``Result`` with evidence: the task ids
or requests involved and their event history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ConfigDict

from harness.faults.rules import _to_pattern, pattern_matches
from harness.journal import Event

EVIDENCE_LIMIT = 25


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class Result:
    name: str
    ok: bool
    summary: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "summary": self.summary,
                "evidence": self.evidence[:EVIDENCE_LIMIT], "evidence_total": len(self.evidence),
                "counts": self.counts}


@dataclass
class Invariant:
    name: str
    params: type[Params]
    check: Callable[["Facts", Any], Result]
    settled: Callable[["Facts", Any], bool] | None = None
    doc: str = ""


REGISTRY: dict[str, Invariant] = {}


def invariant(name: str, params: type[Params], settled: Callable[["Facts", Any], bool] | None = None):
    def wrap(fn: Callable[["Facts", Any], Result]) -> Callable[["Facts", Any], Result]:
        REGISTRY[name] = Invariant(name, params, fn, settled, (fn.__doc__ or "").strip())
        return fn
    return wrap


def lookup(path: str, data: Any) -> Any:
    """Dotted path into nested dicts/lists (``body.Response.CaptchaCode``, ``params.id``)."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.lstrip("-").isdigit():
            idx = int(part)
            data = data[idx] if -len(data) <= idx < len(data) else None
        else:
            return None
    return data


def event_matches(event: Event | dict[str, Any], where: dict[str, Any]) -> bool:
    d = event.to_dict() if isinstance(event, Event) else event
    return all(pattern_matches(_to_pattern(pat), lookup(key, d)) for key, pat in where.items())


# Kinds other harness processes append through the control API (``POST /journal``, marked
# ``source: api``): the locust driver's requests and the mitmproxy addon's flows. Any other event
# appended that way is not evidence: a client of the control API could forge mock observations.
API_KINDS = frozenset({"driver", "proxy.flow"})


def is_evidence(event: Event) -> bool:
    return event.get("source") != "api" or event.kind in API_KINDS


class Facts:
    """Indexed views over a journal, shared by the invariants of one evaluation."""

    def __init__(self, events: Iterable[Event], now: float | None = None):
        self.events = [e for e in events if is_evidence(e)]
        self.now = now if now is not None else (self.events[-1].t if self.events else 0.0)

    def of(self, kind: str, service: str | None = None, action: str | None = None) -> list[Event]:
        return [e for e in self.by_kind.get(kind, ())
                if (service is None or e.service == service) and (action is None or e.action == action)]

    @cached_property
    def by_kind(self) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {}
        for e in self.events:
            out.setdefault(e.kind, []).append(e)
        return out

    @cached_property
    def responses(self) -> dict[tuple[str | None, str], Event]:
        return {(e.service, e.get("rid")): e for e in self.by_kind.get("response", ())}

    def response_to(self, request: Event) -> Event | None:
        return self.responses.get((request.service, request.get("rid")))

    @cached_property
    def rules(self) -> dict[str, dict[str, Any]]:
        """Rule id → spec, from rule_added events (last one wins if an id is reused)."""
        return {e["rule"]: e.get("spec", {}) for e in self.by_kind.get("rule_added", ())}

    def effect_of(self, rule_id: str | None) -> dict[str, Any]:
        return self.rules.get(rule_id, {}).get("effect", {}) if rule_id else {}

    def driver(self, flow: str | None = None) -> list[Event]:
        return [e for e in self.by_kind.get("driver", ()) if flow is None or e.get("flow") == flow]


def brief(e: Event, *fields: str) -> dict[str, Any]:
    """A compact line of evidence for an event."""
    out: dict[str, Any] = {"seq": e.seq, "t": round(e.t, 3), "kind": e.kind}
    if e.service:
        out["service"] = e.service
    if e.action:
        out["action"] = e.action
    for f in fields:
        v = e.get(f)
        if v is not None:
            out[f] = v
    return out


def not_exercised(name: str, what: str) -> Result:
    return Result(name, False, f"not exercised: {what} (the scenario never produced the situation it checks)")
