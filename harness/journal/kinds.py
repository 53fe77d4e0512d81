"""The journal's vocabulary: every event kind, with its required and optional fields.

A kind is declared once, with `declare`: here for the kinds the core writes, in
`mocks/<svc>/events.py` for a service's own kinds. Producers build events through the
declaration (`REQUEST.event(service=..., action=..., ...)`), readers ask for kinds by the same
objects, and the hand-built journals of unit tests use them too, so a renamed kind or field fails
a test instead of turning an invariant into "not exercised".

Strict mode (env `HARNESS_JOURNAL_STRICT=1`, set by the test suite) checks every event built and
every event written: an undeclared kind or field raises `UndeclaredEvent` naming both. Off, a
builder only makes the dict and the writer checks nothing.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

STRICT_ENV = "HARNESS_JOURNAL_STRICT"

# the writer's own keys, and `source`: who appended an event when it did not come from a
# component in the host (the control API marks what arrives by POST /journal)
RESERVED = ("seq", "ts", "t", "kind")
COMMON = ("source",)


def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


STRICT = strict_from_env()


class UndeclaredEvent(ValueError):
    """An event whose kind, or one of whose fields, no declaration names."""


@dataclass(frozen=True)
class Kind:
    name: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    doc: str = ""
    module: str = field(default="", compare=False)  # where it is declared
    fields: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", frozenset((*self.required, *self.optional, *COMMON, *RESERVED)))

    def event(self, **fields: Any) -> dict[str, Any]:
        """The event dict a journal writes; in strict mode every required field must be there."""
        event = {"kind": self.name, **fields}
        if STRICT:
            self.check(event, complete=True)
        return event

    def partial(self, **fields: Any) -> dict[str, Any]:
        """An event with only some of its fields (hand-built journals in tests); the names are
        still checked, always."""
        event = {"kind": self.name, **fields}
        self.check(event)
        return event

    def problem(self, event: Mapping[str, Any], complete: bool = False) -> str | None:
        extra = event.keys() - self.fields
        if extra:
            return (f"journal event {self.name!r}: undeclared field(s) {', '.join(sorted(map(str, extra)))} "
                    f"(declared: {', '.join((*self.required, *self.optional, *COMMON))})")
        if complete:
            missing = [f for f in self.required if f not in event]
            if missing:
                return f"journal event {self.name!r}: missing required field(s) {', '.join(missing)}"
        return None

    def check(self, event: Mapping[str, Any], complete: bool = False) -> None:
        problem = self.problem(event, complete)
        if problem:
            raise UndeclaredEvent(problem)


_REGISTRY: dict[str, Kind] = {}
_services_seen: set[str] = set()


def declare(name: str, required: Iterable[str] = (), optional: Iterable[str] = (), doc: str = "") -> Kind:
    kind = Kind(name, tuple(required), tuple(optional), doc, sys._getframe(1).f_globals.get("__name__", ""))
    known = _REGISTRY.get(name)
    if known is not None:
        if known != kind:
            raise ValueError(f"journal kind {name!r} declared twice, differently")
        return known
    _REGISTRY[name] = kind
    return kind


def _load_services() -> None:
    """Import ``mocks.<name>.events`` of every registered service that has one (its kinds declare
    themselves); a service defined elsewhere (a test's toy service) declares its kinds where it is."""
    from mocks.registry import SERVICES
    for service in [s for s in SERVICES if s not in _services_seen]:
        _services_seen.add(service)
        module = f"mocks.{service}.events"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if not (e.name and module.startswith(e.name)):
                raise


def get(name: str) -> Kind:
    kind = _REGISTRY.get(name)
    if kind is None:
        _load_services()
        kind = _REGISTRY.get(name)
    if kind is None:
        raise UndeclaredEvent(f"journal event kind {name!r} is not declared "
                              f"(harness/journal/kinds.py, or the service's mocks/<svc>/events.py)")
    return kind


def make(name: str, **fields: Any) -> dict[str, Any]:
    return get(name).event(**fields)


def problem(event: Mapping[str, Any]) -> str | None:
    """Why `event` is not a declared kind with declared fields (None when it is). Required fields
    are not asked for: events from outside (POST /journal) may carry only some."""
    name = event.get("kind")
    if not isinstance(name, str):
        return f"journal event: 'kind' must be a string, got {name!r}"
    try:
        kind = get(name)
    except UndeclaredEvent as e:
        return str(e)
    return kind.problem(event)


def check(event: Mapping[str, Any]) -> None:
    found = problem(event)
    if found:
        raise UndeclaredEvent(found)


def declared() -> list[Kind]:
    """Every kind: the core's in declaration order, then the others by name."""
    _load_services()
    core = [k for k in _REGISTRY.values() if k.name in CORE_KINDS]
    return core + sorted((k for k in _REGISTRY.values() if k.name not in CORE_KINDS), key=lambda k: k.name)


def table(kinds: Iterable[Kind] | None = None) -> str:
    """The kinds as a Markdown table (docs/journal.md is generated from it); by default the kinds
    the harness and its services declare (not a test's own)."""
    if kinds is None:
        kinds = [k for k in declared() if k.module.startswith(("harness.", "mocks."))]
    rows = ["| kind | required | optional | what | declared in |", "|---|---|---|---|---|"]
    for k in kinds:
        rows.append(f"| `{k.name}` | {', '.join(k.required)} | {', '.join(k.optional)} | {k.doc} | `{k.module}` |")
    return "\n".join(rows)


# --- the core's kinds ------------------------------------------------------------------------------
REQUEST = declare("request", ("service", "action", "rid", "method", "path", "params"), ("peer", "via"),
                  "a mock received a request; `via`: the mitm flow that carried it (its `proxy.flow` `fid`)")
# the mitm addon names the flow that carries a request to a mock (never to a live service): the
# mock journals it as `via`, and an answer the client never got from the proxy reads LOST_AT_PROXY
VIA_HEADER = "X-Harness-Flow"
# what reached the wire (`response.outcome`); only `delivered` means the client got the answer
DELIVERED, CLIENT_GONE, RESET, PARTIAL, HUNG = "delivered", "client_gone", "reset", "partial", "hung"
RESPONSE_OUTCOMES = (DELIVERED, CLIENT_GONE, RESET, PARTIAL, HUNG)
LOST_AT_PROXY = "lost_at_proxy"  # never journaled: how the verdict reads a delivered answer the proxy kept
RESPONSE = declare("response", ("service", "action", "rid", "status", "rule", "outcome"),
                   ("body", "hung_s", "sent_bytes", "full_bytes", "refused"),
                   "a mock answered; `outcome`: what reached the wire — delivered (`body`, parsed), client_gone "
                   "(the peer closed first: nothing sent), reset, partial (`sent_bytes` of `full_bytes`), hung "
                   "(`hung_s`); a second event for the same `rid` corrects it when the write failed or a delayed answer was "
                   "left unread (the client reset the connection at once); `refused`: why the "
                   "mock refused the request (check, expected, got, why)")
DECISION = declare("decision", ("rule", "service", "action", "n", "fired", "reason", "ref", "fingerprint", "matched"),
                   ("link",),
                   "a rule matched a call; `ref` is the rid or callback id; `matched`: the call's service, action "
                   "and values of the fields the rule's match names, `fingerprint` a short hash of them (replay "
                   "compares it)")
CALLBACK_SEND = declare("callback_send", ("service", "action", "cid", "url"), ("params", "copy", "attempt"),
                        "an outbound callback is about to leave")
CALLBACK = declare("callback", ("service", "action", "cid", "url", "outcome"),
                   ("method", "params", "form", "json", "match", "rule", "copy", "attempt", "status",
                    "latency_ms", "error", "response"),
                   "an outbound callback attempt: outcome delivered / http_error / refused / timeout / error / dropped")
RULE_ADDED = declare("rule_added", ("rule", "spec"), ("replaced",),
                     "a fault rule was added; `replaced`: an explicit id that existed, replaced in place")
RULE_REMOVED = declare("rule_removed", ("rule",), (), "a fault rule was removed")
RULES_CLEARED = declare("rules_cleared", (), (), "every fault rule was removed")
STEP = declare("step", ("step",),
               # host, runner, load stage, proxy stack, timeline (`timeline.<action>`)
               ("service", "seed", "urls", "count", "link", "links", "pids", "target", "variant", "argv", "pid",
                "time_scale", "mode", "locust", "sent", "failed", "driver_events", "run_id", "proxies",
                "toxiproxy", "toxiproxy_version", "mitm", "index", "why", "error", "steps_left", "ids",
                "status", "response", "met", "note", "event", "build_dir", "cached", "seconds"),
               "a harness step: host / service / target / proxies started or stopped, timeline entries, "
               "run started / finished")
DRIVER = declare("driver", ("flow", "n", "method", "url", "vars", "var_kinds", "intent", "labels"),
                 ("status", "response", "error", "unreached", "latency_ms", "driver", "worker"),
                 "a request the traffic driver (or a locust user, `driver: locust`) sent to the target, "
                 "and what it saw; `unreached: true` when it could not connect (the target decided nothing)")
PROXY_FLOW = declare("proxy.flow", ("link", "service", "fid", "method", "path", "action", "status", "upstream_status",
                                    "rule", "outcome", "ms"),
                     ("replay_of", "error", "duplicates"),
                     "mitmproxy carried a flow on a link: outcome forwarded / duplicated / replaced / dropped / "
                     "hang / reset / upstream_error …")
TOXIC = declare("toxic", ("op", "link", "rule"),
                ("toxic", "name", "stream", "toxicity", "attributes", "t_run", "error"),
                "a Toxiproxy toxic was added / removed (or refused: `error`) on a link")
LINK = declare("link", ("op", "link", "rule"), ("t_run", "error"),
               "a link was cut (down) or restored (up), or that failed (error)")

CORE_KINDS = frozenset(_REGISTRY)
