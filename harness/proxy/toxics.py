"""Apply link rules (``effect.toxic`` / ``effect.link_down``: ``Rule.applier`` is ``Applier.TOXIC`` /
``Applier.LINK``) to Toxiproxy, on the run clock.

A rule applies to every link its ``match.link`` selects (omitted: every link); ``match.service``,
``action`` and ``params`` are per-request fields and are not used for TCP faults. Without
``schedule.window`` a rule's toxic is on from the moment it is added until it is removed; with a
window it is added when the run clock (``RuleEngine.elapsed()``) reaches ``start`` and removed at
``end``. ``after``/``every``/``times``/``probability`` count requests and do not apply to a TCP link;
use ``toxicity`` (fraction of connections affected; Toxiproxy rolls it with an unseeded generator,
its ``-seed`` flag is ignored — keep it at 1.0 for replayable runs) or a window instead.

``link_down: true`` disables the link's proxy: its port stops listening (connection refused) and open
connections are closed; it is enabled again when no active rule holds it down.

Every change is a journal event: ``{"kind": "toxic", "op": "added"|"removed"|"error", "link",
"rule", "toxic", "stream", "toxicity", "attributes"}`` and ``{"kind": "link", "op": "down"|"up",
"link", "rule"}``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

from harness.faults import Applier, Effect, RuleEngine
from harness.faults.rules import TOXIPROXY, Rule, pattern_matches
from harness.journal import kinds
from harness.proxy.toxiproxy_links import Links
from harness.proxy.toxiproxy_client import ToxiproxyError

log = logging.getLogger("harness.proxy")

# attribute names per toxic type (Toxiproxy 2.x); units: ms, KB/s, bytes, µs for slicer delay
TOXIC_ATTRIBUTES: dict[str, frozenset[str]] = {
    "latency": frozenset({"latency", "jitter"}),
    "bandwidth": frozenset({"rate"}),
    "slow_close": frozenset({"delay"}),
    "timeout": frozenset({"timeout"}),
    "reset_peer": frozenset({"timeout"}),
    "slicer": frozenset({"average_size", "size_variation", "delay"}),
    "limit_data": frozenset({"bytes"}),
}


def check_toxic(effect: Effect) -> str | None:
    """Why Toxiproxy would refuse this toxic, or None."""
    allowed = TOXIC_ATTRIBUTES.get(effect.toxic or "")
    if allowed is None:
        return None
    unknown = sorted(set(effect.attributes) - allowed)
    if unknown:
        return f"{effect.toxic} has no attribute(s) {', '.join(unknown)} (has: {', '.join(sorted(allowed))})"
    return None


@dataclass(frozen=True)
class ToxicSpec:
    type: str
    stream: str
    toxicity: float
    attributes: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, effect: Effect) -> "ToxicSpec":
        return cls(str(effect.toxic), effect.stream, effect.toxicity, tuple(sorted(effect.attributes.items())))


def rule_links(rule: Rule, links: list[str]) -> list[str]:
    if rule.match.link is None:
        return list(links)
    return [name for name in links if pattern_matches(rule.match.link, name)]


def desired_state(rules: list[tuple[str, Rule]], links: list[str], t: float
                  ) -> tuple[dict[tuple[str, str], ToxicSpec], dict[str, str]]:
    """(toxics wanted per (link, rule id), links held down → by which rule) at run time ``t``."""
    toxics: dict[tuple[str, str], ToxicSpec] = {}
    down: dict[str, str] = {}
    for rid, rule in rules:
        if rule.applier not in TOXIPROXY:
            continue
        window = rule.schedule.window
        if window is not None and not window.contains(t):
            continue
        for link in rule_links(rule, links):
            if rule.applier is Applier.LINK:
                down.setdefault(link, rid)
            else:
                toxics[(link, rid)] = ToxicSpec.of(rule.effect)
    return toxics, down


def next_boundary(rules: list[tuple[str, Rule]], t: float) -> float | None:
    """Seconds until the next window start/end of a link rule, or None."""
    waits = []
    for _, rule in rules:
        w = rule.schedule.window
        if w is None or rule.applier not in TOXIPROXY:
            continue
        for edge in (w.start, w.end):
            if edge is not None and edge > t:
                waits.append(edge - t)
    return min(waits) if waits else None


class ToxicDriver:
    """Keeps the Toxiproxy state of ``links`` equal to what the engine's rules want right now."""

    def __init__(self, engine: RuleEngine, links: Links, record: Callable[[dict[str, Any]], Any],
                 interval_s: float = 0.02):
        self.engine, self.links, self.record = engine, links, record
        self.client = links.client
        self.interval_s = interval_s
        self.applied: dict[tuple[str, str], ToxicSpec] = {}
        self.down: dict[str, str] = {}
        self.failed: dict[tuple[str, str], ToxicSpec] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Run the reconcile loop on the current event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="toxic-driver")

    async def stop(self) -> None:
        """Stop the loop; remove every toxic we added and bring every link back up."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        async with self._lock:
            await self._apply({}, {}, final=True)

    def poke(self) -> None:
        """Reconcile now (e.g. right after rules changed)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad tick stop the driver
                log.exception("toxic driver tick failed")
            wait = self.interval_s
            boundary = next_boundary(self.engine.rules(), self.engine.elapsed())
            if boundary is not None:
                wait = min(wait, boundary + 0.001)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    # --- reconcile -------------------------------------------------------------------------
    async def sync(self) -> None:
        """Apply the engine's current link rules once."""
        async with self._lock:
            rules = self.engine.rules()
            toxics, down = desired_state(rules, self.links.names(), self.engine.elapsed())
            await self._apply(toxics, down)

    async def _apply(self, toxics: dict[tuple[str, str], ToxicSpec], down: dict[str, str],
                     final: bool = False) -> None:
        for key in [k for k in self.failed if toxics.get(k) != self.failed[k]]:
            del self.failed[key]  # rule changed or gone: may try again
        # remove toxics no longer wanted (or changed)
        for key, spec in list(self.applied.items()):
            if toxics.get(key) == spec:
                continue
            link, rid = key
            try:
                if link in self.links:
                    await asyncio.to_thread(self.client.remove_toxic, self.links.get(link).proxy, _toxic_name(rid))
            except ToxiproxyError as e:
                if e.status != 404 and not final:
                    self._event("toxic", "error", link, rid, spec, error=str(e))
                    continue
            del self.applied[key]
            self._event("toxic", "removed", link, rid, spec)
        # links up/down
        for link, rid in list(self.down.items()):
            if link not in down:
                if await self._set_enabled(link, True, rid, final):
                    del self.down[link]
        for link, rid in down.items():
            if link not in self.down and await self._set_enabled(link, False, rid, final):
                self.down[link] = rid
        # add toxics now wanted
        for key, spec in toxics.items():
            if key in self.applied or key in self.failed:
                continue
            link, rid = key
            problem = check_toxic(_effect_of(self.engine, rid))
            try:
                if problem:
                    raise ToxiproxyError(problem, 400)
                await asyncio.to_thread(self.client.add_toxic, self.links.get(link).proxy, _toxic_name(rid),
                                        spec.type, stream=spec.stream, toxicity=spec.toxicity,
                                        attributes=dict(spec.attributes))
            except ToxiproxyError as e:
                self.failed[key] = spec
                self._event("toxic", "error", link, rid, spec, error=str(e))
                log.warning("rule %s: toxic on %s refused: %s", rid, link, e)
                continue
            self.applied[key] = spec
            self._event("toxic", "added", link, rid, spec)

    async def _set_enabled(self, link: str, enabled: bool, rid: str, final: bool) -> bool:
        if link not in self.links:
            return True
        try:
            await asyncio.to_thread(self.client.set_enabled, self.links.get(link).proxy, enabled)
        except ToxiproxyError as e:
            if not final:
                self.record(kinds.LINK.event(op="error", link=link, rule=rid, error=str(e)))
                return False
        self.record(kinds.LINK.event(op="up" if enabled else "down", link=link, rule=rid,
                                     t_run=round(self.engine.elapsed(), 4)))
        return True

    def _event(self, kind: str, op: str, link: str, rid: str, spec: ToxicSpec, **more: Any) -> None:
        self.record(kinds.make(kind, op=op, link=link, rule=rid, toxic=spec.type, stream=spec.stream,
                               toxicity=spec.toxicity, attributes=dict(spec.attributes),
                               t_run=round(self.engine.elapsed(), 4), **more))


def _toxic_name(rule_id: str) -> str:
    return f"rule.{rule_id}"


def _effect_of(engine: RuleEngine, rid: str) -> Effect:
    for r, rule in engine.rules():
        if r == rid:
            return rule.effect
    return Effect(link_down=True)  # rule vanished meanwhile: nothing to check
