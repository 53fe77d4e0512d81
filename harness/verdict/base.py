"""Invariants: pure functions of the run journal (which includes what the traffic driver saw).

Each invariant is registered with a pydantic parameter model, so ``expect:`` entries in scenario
files are validated like the rest of the file, and returns a ``Result`` with evidence: the task ids
or requests involved and their event history.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ConfigDict

from harness.faults.rules import to_pattern, pattern_matches
from harness.journal import Event, kinds
from harness.verdict.text_body import text_fields

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
    exercised: bool = True  # False: the run never produced the situation (INCONCLUSIVE, not FAIL)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "exercised": self.exercised, "summary": self.summary,
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
OWNERS: dict[str, str] = {}  # invariant name → the service that registered it (generic ones: none)


def invariant(name: str, params: type[Params], settled: Callable[["Facts", Any], bool] | None = None):
    def wrap(fn: Callable[["Facts", Any], Result]) -> Callable[["Facts", Any], Result]:
        REGISTRY[name] = fn.invariant = Invariant(name, params, fn, settled,  # type: ignore[attr-defined]
                                                  (fn.__doc__ or "").strip())
        return fn
    return wrap


def register_invariants(source: Any, service: str | None = None) -> None:
    """(Re-)register a service's invariants: ``source`` is a module of ``@invariant`` functions (also
    when it was imported before this registry was), or a function that registers them, or None.
    ``service``: whose they are (a scenario expecting one must run that service)."""
    if source is None:
        return
    if callable(source):
        before = dict(REGISTRY)
        source()
        names = [n for n, inv in REGISTRY.items() if before.get(n) is not inv]
    else:
        names = []
        for value in vars(source).values():
            inv = getattr(value, "invariant", None)
            if isinstance(inv, Invariant):
                REGISTRY[inv.name] = inv
                names.append(inv.name)
    if service is not None:
        OWNERS.update(dict.fromkeys(names, service))


def invariant_service(name: str) -> str | None:
    """The service whose invariant this is (None: a generic one, or unknown)."""
    return OWNERS.get(name)


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


def undeclared_in(where: dict[str, Any]) -> str | None:
    """Why a ``where`` (dotted field → pattern) can never match: its ``kind`` is not declared, or a
    field it names is not one of that kind's (a pattern for ``kind`` is not checked)."""
    name = where.get("kind")
    if not isinstance(name, str):
        return None
    try:
        kind = kinds.get(name)
    except kinds.UndeclaredEvent as e:
        return str(e)
    return kind.problem({key.split(".", 1)[0]: None for key in where})


def field_value(key: str, event: dict[str, Any]) -> Any:
    """``lookup``, where a path that runs into a plain-text value reads it as fields
    (``body.request`` of ``OK|123``: see ``harness.verdict.text_body``)."""
    data: Any = event
    for part in key.split("."):
        if isinstance(data, str):
            data = text_fields(data, event)
        data = lookup(part, data)
        if data is None:
            return None
    return data


def event_matches(event: Event | dict[str, Any], where: dict[str, Any]) -> bool:
    d = event.to_dict() if isinstance(event, Event) else event
    return all(pattern_matches(to_pattern(pat), field_value(key, d)) for key, pat in where.items())


# Kinds other harness processes append through the control API (``POST /journal``, marked
# ``source: api``): the locust driver's requests and the mitmproxy addon's flows. Any other event
# appended that way is not evidence: a client of the control API could forge mock observations.
API_KINDS = frozenset({"driver", "proxy.flow"})


def is_evidence(event: Event) -> bool:
    return event.get("source") != "api" or event.kind in API_KINDS


TARGET_EDGE_S = 0.05


class Facts:
    """Indexed views over a journal, shared by the invariants of one evaluation."""

    def __init__(self, events: Iterable[Event], now: float | None = None):
        self.events = [e for e in events if is_evidence(e)]
        self.now = now if now is not None else (self.events[-1].t if self.events else 0.0)
        self._views: dict[str, Any] = {}

    def view(self, key: str, build: Callable[["Facts"], Any]) -> Any:
        """A view built once per evaluation and shared by the invariants that use it (a service's
        per-task book, say): ``facts.view("solver.book", SolutionBook)``."""
        if key not in self._views:
            self._views[key] = build(self)
        return self._views[key]

    def of(self, kind: str | kinds.Kind, service: str | None = None, action: str | None = None) -> list[Event]:
        """Events of a declared kind (an undeclared name raises: a renamed kind must not read as "none")."""
        name = kind.name if isinstance(kind, kinds.Kind) else kinds.get(kind).name
        return [e for e in self.by_kind.get(name, ())
                if (service is None or e.service == service) and (action is None or e.action == action)]

    @cached_property
    def by_kind(self) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {}
        for e in self.events:
            out.setdefault(e.kind, []).append(e)
        return out

    @cached_property
    def target_down_spans(self) -> list[tuple[float, float]]:
        """When the timeline had the target killed: from ``target_killed`` to the next
        ``target_started`` (or the end), as journaled (``target_down_during`` widens them)."""
        spans, since = [], None
        for e in self.by_kind.get(kinds.STEP.name, ()):
            if e.get("step") == "target_killed" and since is None:
                since = e.t
            elif e.get("step") == "target_started" and since is not None:
                spans.append((since, e.t))
                since = None
        if since is not None:
            spans.append((since, float("inf")))
        return spans

    def target_down_during(self, start: float, end: float, edge: float = TARGET_EDGE_S) -> bool:
        """Was the target killed by the timeline at some moment of [start, end]? The spans are
        widened by ``edge`` on both sides (a kill is journaled just after it is made)."""
        return any(a - edge <= end and start <= b + edge for a, b in self.target_down_spans)

    @cached_property
    def responses(self) -> dict[tuple[str | None, str], Event]:
        """(service, rid) → the last ``response`` event of a mock's request. An answer the mock
        delivered to a mitm flow whose client got nothing (a ``drop_response``, a duplicate the proxy
        sent, the client gone) reads ``outcome: lost_at_proxy``: it never reached the integration."""
        out = {(e.service, e.get("rid")): e for e in self.by_kind.get(kinds.RESPONSE.name, ())}
        kept = {e.get("fid") for e in self.by_kind.get(kinds.PROXY_FLOW.name, ()) if e.get("status") is None}
        if kept:
            for e in self.by_kind.get(kinds.REQUEST.name, ()):
                key = (e.service, e.get("rid"))
                if e.get("via") in kept and key in out and out[key].get("outcome") == kinds.DELIVERED:
                    out[key] = dataclasses.replace(out[key], data={**out[key].data, "outcome": kinds.LOST_AT_PROXY,
                                                                   "lost_at": e.get("via")})
        return out

    def response_to(self, request: Event) -> Event | None:
        return self.responses.get((request.service, request.get("rid")))

    @cached_property
    def rules(self) -> dict[str, dict[str, Any]]:
        """Rule id → spec, from rule_added events (last one wins if an id is reused)."""
        return {e["rule"]: e.get("spec", {}) for e in self.by_kind.get(kinds.RULE_ADDED.name, ())}

    def effect_of(self, rule_id: str | None) -> dict[str, Any]:
        return self.rules.get(rule_id, {}).get("effect", {}) if rule_id else {}

    def driver(self, flow: str | None = None) -> list[Event]:
        return [e for e in self.by_kind.get(kinds.DRIVER.name, ()) if flow is None or e.get("flow") == flow]


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


def delivered(response: Event | None) -> bool:
    """Did this ``response`` event's answer reach the client? (A journal written before outcomes
    were recorded has none on its answers: those were delivered.)"""
    return response is not None and response.get("outcome") in (None, kinds.DELIVERED)


def not_exercised(name: str, what: str) -> Result:
    return Result(name, False, f"not exercised: {what} (the scenario never produced the situation it checks)",
                  exercised=False)


def peak_rate(times: list[float], window: float = 1.0) -> int:
    """The most events in any ``window`` seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best

