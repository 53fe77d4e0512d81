"""The seeded decision engine: which rule (if any) faults this call.

Determinism: a rule's decision depends only on (run seed, rule id, the rule's match count n) and the
run time for windowed rules. The same seed and the same order of matching calls give the same
decisions, so a run can be replayed exactly. Every evaluation of a matching rule is recorded.

Another process can apply some of the rules itself (the mitmproxy addon applies the ``mitm`` ones):
``snapshot(applier)`` gives them with their ``epoch`` (a new one each time a rule is added or
replaced), ``version`` counts every change (``subscribe`` is told of each), and the other process's
engine takes them with ``mirror()``, which keeps the counters of the rules it already has — the
match counts that decide a rule live in exactly one engine, the one of its applier's process (the
host's engine only ``tally``s the mirror's decisions, for its rule list).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import orjson

from harness.faults.rules import Applier, Effect, Rule, parse_rules
from harness.journal import kinds


def fingerprint(match: Any, service: str | None, action: str | None, params: dict[str, Any] | None,
                link: str | None) -> tuple[str, dict[str, Any]]:
    """What a decision was made for: the request's service and action, and its values of the fields
    the rule's match names (``link``, ``params.<key>``), with a short stable hash of them. A replay
    whose decision for the same rule and match number has another fingerprint hit another request."""
    fields: dict[str, Any] = {"service": service, "action": action}
    if match.link is not None:
        fields["link"] = link
    for key in sorted(match.params):
        fields[f"params.{key}"] = (params or {}).get(key)
    return hashlib.blake2b(_canonical_json(fields), digest_size=6).hexdigest(), fields


def _canonical_json(fields: dict[str, Any]) -> bytes:
    """``json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)``, the fingerprint's
    text since the first journals (replays compare against them). orjson writes the same bytes when
    every key is printable ASCII and every value None, a bool, an int JSON keeps exact or a string of
    printable ASCII, which is nearly every request; anything else takes json.dumps."""
    for key, value in fields.items():
        plain = value is None or value.__class__ is bool or (value.__class__ is int and -_EXACT < value < _EXACT) \
            or (value.__class__ is str and value.isascii() and value.isprintable())
        if not (plain and key.isascii() and key.isprintable()):
            return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)


_EXACT = 2**53


def roll(seed: int, rule_id: str, n: int) -> float:
    """A uniform float in [0, 1) fixed by (seed, rule id, match number)."""
    digest = hashlib.blake2b(f"{seed}|{rule_id}|{n}".encode(), digest_size=8).digest()
    return (struct.unpack(">Q", digest)[0] >> 11) / float(1 << 53)


@dataclass(frozen=True)
class Decision:
    rule_id: str
    effect: Effect
    n: int


@dataclass
class _Active:
    rule: Rule
    id: str
    matched: int = 0
    fired: int = 0
    epoch: int = 0  # which adding of the rule this is (a replaced rule is another epoch: counters from zero)


_EPOCHS = itertools.count(1)


Recorder = Callable[[dict[str, Any]], Any]


class RuleEngine:
    def __init__(self, seed: int = 0, record: Recorder | None = None,
                 clock: Callable[[], float] = time.monotonic, hold: Recorder | None = None):
        self.seed = seed
        self._record = record
        self._hold = hold or record  # ``decide(held=True)``: a caller that writes its own next event soon
        self._clock = clock
        self._rules: list[_Active] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.version = 0  # +1 on every change of the rules or of the run clock's start
        self._listeners: list[Callable[[], Any]] = []
        self.started = clock()

    @property
    def started(self) -> float:
        """The run clock's zero (``clock()`` at the run's start): rule windows count from here."""
        return self._started

    @started.setter
    def started(self, value: float) -> None:
        self._started = value
        self._changed()

    def subscribe(self, listener: Callable[[], Any]) -> None:
        """``listener()`` is called after every change (rules added / removed / cleared, ``started`` set)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        with self._lock:
            self.version += 1
        for listener in list(self._listeners):
            listener()

    # --- rule management -------------------------------------------------------------------
    def add(self, rules: Rule | dict | Iterable[Rule | dict]) -> list[str]:
        """Add rules at the end, in order; returns their ids. A rule with the id of a rule already
        there replaces it in its place (its match counts start again): adding is idempotent."""
        if isinstance(rules, (Rule, dict)):
            rules = [rules]
        parsed = [r if isinstance(r, Rule) else parse_rules(r, "rule")[0] for r in rules]
        ids, replaced = [], []
        with self._lock:
            for rule in parsed:
                rid = rule.id
                if rid is None:  # generated ids skip the ones taken (also by explicit ids)
                    taken = {a.id for a in self._rules}
                    rid = f"r{next(self._ids)}"
                    while rid in taken:
                        rid = f"r{next(self._ids)}"
                # an explicit id that exists replaces that rule in its place, counters from zero
                at = next((i for i, a in enumerate(self._rules) if a.id == rid), None)
                active = _Active(rule, rid, epoch=next(_EPOCHS))
                if at is None:
                    self._rules.append(active)
                else:
                    self._rules[at] = active
                ids.append(rid)
                replaced.append(at is not None)
        for rid, rule, again in zip(ids, parsed, replaced):
            self._emit(kinds.RULE_ADDED.event(rule=rid, spec=rule.public(), **({"replaced": True} if again else {})))
        self._changed()
        return ids

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [a for a in self._rules if a.id != rule_id]
            removed = len(self._rules) != before
        if removed:
            self._emit(kinds.RULE_REMOVED.event(rule=rule_id))
            self._changed()
        return removed

    def clear(self) -> None:
        with self._lock:
            self._rules = []
            self._ids = itertools.count(1)
        self._emit(kinds.RULES_CLEARED.event())
        self._changed()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"id": a.id, **{k: v for k, v in a.rule.public().items() if k != "id"},
                     "matched": a.matched, "fired": a.fired} for a in self._rules]

    def rules(self) -> list[tuple[str, Rule]]:
        with self._lock:
            return [(a.id, a.rule) for a in self._rules]

    def snapshot(self, applier: Applier) -> tuple[int, list[dict[str, Any]]]:
        """(``version``, the rules ``applier`` applies, in order: ``{"id", "epoch", "spec"}``) for
        another process's engine (``mirror``)."""
        with self._lock:
            return self.version, [{"id": a.id, "epoch": a.epoch, "spec": a.rule.public()}
                                  for a in self._rules if a.rule.applier is applier]

    def mirror(self, rules: Iterable[tuple[str, int, Rule]]) -> None:
        """Take these rules ``(id, epoch, rule)`` (another engine's ``snapshot``), keeping the counters
        of those already here with the same id and epoch; records nothing (the other engine did)."""
        with self._lock:
            have = {(a.id, a.epoch): a for a in self._rules}
            self._rules = [have.get((rid, epoch)) or _Active(rule, rid, epoch=epoch) for rid, epoch, rule in rules]

    def tally(self, rule_id: str, fired: bool) -> None:
        """Count a decision a mirror made for one of these rules (so that ``list()`` shows its matches)."""
        with self._lock:
            for a in self._rules:
                if a.id == rule_id:
                    a.matched += 1
                    a.fired += bool(fired)

    def elapsed(self) -> float:
        return self._clock() - self.started

    # --- decisions -------------------------------------------------------------------------
    def decide(self, service: str | None, action: str | None, params: dict[str, Any] | None = None,
               *, link: str | None = None, ref: Any = None,
               applier: Applier | None = None, held: bool = False) -> Decision | None:
        """Evaluate rules in order. Every matching rule counts the call; the first whose schedule
        fires wins, later matching ones are recorded as shadowed. ``applier``: only the rules that
        component applies (``Rule.applier``) are considered — each component passes its own, so a
        rule is decided in exactly one place; None considers every rule. ``held``: the decisions are
        journaled with ``hold`` (the mock pipeline: they go out with its answer, in one write)."""
        if not self._rules:
            return None
        t = self.elapsed()
        records = []
        winner: Decision | None = None
        with self._lock:
            for a in self._rules:
                if applier is not None and a.rule.applier is not applier:
                    continue
                if not a.rule.match.matches(service, action, params, link):
                    continue
                a.matched += 1
                n = a.matched
                if winner is not None:
                    fired, reason = False, f"shadowed by {winner.rule_id}"
                else:
                    fired, reason = self._schedule(a, n, t)
                    if fired:
                        a.fired += 1
                        winner = Decision(a.id, a.rule.effect, n)
                fp, fields = fingerprint(a.rule.match, service, action, params, link)
                records.append(kinds.DECISION.event(rule=a.id, service=service, action=action, link=link, n=n,
                                                    fired=fired, reason=reason, ref=ref, fingerprint=fp,
                                                    matched=fields))
        emit = self._hold if held else self._record
        if emit is not None:
            for rec in records:
                emit(rec)
        return winner

    def _schedule(self, a: _Active, n: int, t: float) -> tuple[bool, str]:
        s = a.rule.schedule
        if s.window is not None and not s.window.contains(t):
            return False, f"outside window at {t:.3f}s"
        if n <= s.after:
            return False, f"skipping first {s.after}"
        if (n - s.after) % s.every:
            return False, f"not an every-{s.every} match"
        if s.times is not None and a.fired >= s.times:
            return False, f"times exhausted ({s.times})"
        if s.probability < 1.0:
            r = roll(self.seed, a.id, n)
            if r >= s.probability:
                return False, f"roll {r:.4f} >= p {s.probability}"
            return True, f"roll {r:.4f} < p {s.probability}"
        return True, "scheduled"

    def _emit(self, event: dict[str, Any]) -> None:
        if self._record is not None:
            self._record(event)
