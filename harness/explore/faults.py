"""One fault of a candidate timeline, and how it becomes scenario steps.

A ``Fault`` is the unit the generator draws and the shrinker removes or simplifies: a rule added at
``at`` (any rule of the fault language: a reply, a callback fault, a proxy fault, a toxic), an
outage — a link cut, a service or the target stopped at ``at`` and back at ``until`` — or a
condition: a service degraded (its config patched) from ``at`` on, e.g. a solver solving slowly. Times are run
time in seconds as the scenario writes them (``--time-scale`` compresses them at run time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Iterator

from harness.durations import parse_duration

# outage kinds → (the step that starts it, the step that ends it)
OUTAGES = {"link": ("cut_link", "restore_link"), "service": ("stop_service", "start_service"),
           "target": ("stop_target", "start_target")}
# the base's own fault steps: explore ignores them (its traffic steps — emit, control, wait_for — stay)
FAULT_STEPS = ("add_rules", "remove_rules", "clear_rules", "cut_link", "restore_link", "stop_service",
               "start_service", "stop_target", "start_target")


@dataclass(frozen=True)
class Fault:
    at: float
    rule: dict[str, Any] | None = None      # a rule as the scenario writes it (id, match, effect, schedule)
    outage: str | None = None               # "link" | "service" | "target"
    what: str = ""                          # the link or service it stops
    until: float | None = None
    condition: str = ""                     # the name of a degraded state of service ``what`` …
    config: dict[str, Any] | None = None    # … and the patch of its mock's config that makes it

    def steps(self) -> list[dict[str, Any]]:
        if self.config is not None:
            return [{"at": seconds(self.at), "set_config": {self.what: self.config}}]
        if self.rule is not None:
            return [{"at": seconds(self.at), "add_rules": [self.rule]}]
        start, end = OUTAGES[self.outage or ""]
        arg: Any = self.what or True
        out = [{"at": seconds(self.at), start: arg}]
        if self.until is not None:
            out.append({"at": seconds(self.until), end: arg})
        return out

    @property
    def signature(self) -> str:
        """What kind of fault this is, without its numbers: failures are told apart by it."""
        if self.config is not None:
            return f"{self.what} {self.condition}"
        if self.rule is None:
            return f"{self.outage} down" + (f" {self.what}" if self.what else "")
        match, effect = self.rule.get("match", {}), self.rule.get("effect", {})
        where = "/".join(str(match[k]) for k in ("link", "service", "action") if k in match) or "any"
        kind = next((f"{k}={effect[k]}" for k in ("callback", "toxic", "error", "captcha_code") if k in effect),
                    None) or "+".join(k for k in effect if k not in ("body", "attributes", "content_type"))
        if effect.get("concurrent"):
            kind += " concurrent"
        return f"{where} {kind}"

    def describe(self) -> str:
        """One line a person reads: when, what, how often."""
        if self.config is not None:
            patch = json.dumps(self.config, separators=(", ", ": "))
            return f"at {seconds(self.at)}: {self.signature} ({patch}) for the rest of the run"
        if self.rule is None:
            back = f", back at {seconds(self.until)}" if self.until is not None else ", never back"
            return f"at {seconds(self.at)}: {self.signature}{back}"
        effect = json.dumps(self.rule.get("effect", {}), separators=(", ", ": "))
        sched = self.rule.get("schedule")
        when = f" schedule {json.dumps(sched, separators=(', ', ': '))}" if sched else " every match"
        where = json.dumps(self.rule.get("match", {}), separators=(", ", ": "))
        return f"at {seconds(self.at)}: {where} → {effect}{when}"


def seconds(t: float | None) -> str:
    return f"{round(t or 0.0, 3):g}s"


def timeline(base_steps: list[dict[str, Any]], faults: list[Fault]) -> list[dict[str, Any]]:
    """The base's traffic steps (its own fault steps dropped) with the faults' steps merged in by
    time. A base step without ``at`` follows the one before it, so a fault step goes before the
    first base step whose time is later than its own."""
    kept = [s for s in base_steps if not any(k in s for k in FAULT_STEPS)]
    timed: list[tuple[float, dict[str, Any]]] = []
    now = 0.0
    for step in kept:
        if "at" in step:
            now = _as_seconds(step["at"])
        timed.append((now, step))
    ours = sorted(((_as_seconds(s["at"]), s) for f in faults for s in f.steps()), key=lambda p: p[0])
    out: list[dict[str, Any]] = []
    i = 0
    for t, step in timed:
        while i < len(ours) and ours[i][0] < t:
            out.append(ours[i][1])
            i += 1
        out.append(step)
    out += [s for _, s in ours[i:]]
    return out


def _as_seconds(value: Any) -> float:
    return parse_duration(value)


# --- simpler versions, for the shrinker ------------------------------------------------------------
MIN_SPAN_S = 0.1
MIN_PROBABILITY = 0.1
MIN_DELAY_MS = 50


def simpler(fault: Fault) -> Iterator[Fault]:
    """Versions of ``fault`` that are each strictly simpler (a well-founded measure goes down:
    fewer matches faulted, shorter windows and delays, lower counts and probabilities, an earlier
    start, a plainer effect), simplest first."""
    if fault.at > 0:
        span = (fault.until - fault.at) if fault.until is not None else None
        yield replace(fault, at=0.0, until=span)
    if fault.rule is None:  # an outage: a shorter one; a condition: only the earlier start
        if fault.until is not None and fault.until - fault.at >= 2 * MIN_SPAN_S:
            yield replace(fault, until=round(fault.at + (fault.until - fault.at) / 2, 3))
        return
    rule = fault.rule
    for effect in _simpler_effects(rule["effect"]):
        yield replace(fault, rule={**rule, "effect": effect})
    counted = not any(k in rule["effect"] for k in ("toxic", "link_down"))  # toxics: windows only
    for schedule in _simpler_schedules(rule.get("schedule") or {}, counted):
        yield replace(fault, rule=_with_schedule(rule, schedule))


def _with_schedule(rule: dict[str, Any], schedule: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in rule.items() if k != "schedule"}
    if schedule:
        out["schedule"] = schedule
    return out


def _simpler_effects(effect: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if effect.get("callback") == "storm":  # a storm → all copies at once, then one after another
        yield {"callback": "duplicate", "count": min(effect.get("count", 1), 3), "concurrent": True}
    if effect.get("concurrent"):
        yield {k: v for k, v in effect.items() if k != "concurrent"}
    if effect.get("count", 1) > 1:
        yield {**effect, "count": effect["count"] // 2}
    if (effect.get("duplicate_request") or 1) > 1:
        yield {**effect, "duplicate_request": effect["duplicate_request"] // 2}
    if "delay_ms" in effect and "callback" not in effect and len(effect) > 1:
        yield {k: v for k, v in effect.items() if k != "delay_ms"}   # an error without its delay
    if "delay_ms" in effect and effect["delay_ms"] >= 2 * MIN_DELAY_MS and len(effect) > 1:
        yield {**effect, "delay_ms": effect["delay_ms"] // 2}  # a callback delay (a plain one: below)
    if set(effect) == {"delay_ms"} and effect["delay_ms"] >= 2 * MIN_DELAY_MS:
        yield {"delay_ms": effect["delay_ms"] // 2}
    if "body" in effect and "status" in effect:
        yield {k: v for k, v in effect.items() if k not in ("body", "content_type")}
    attrs = effect.get("attributes") or {}
    for name, value in attrs.items():
        if isinstance(value, (int, float)) and value >= 2:
            yield {**effect, "attributes": {**attrs, name: type(value)(value // 2)}}


def _simpler_schedules(schedule: dict[str, Any], counted: bool) -> Iterator[dict[str, Any]]:
    if "window" in schedule:
        w = schedule["window"]
        start, end = _as_seconds(w.get("start", 0)), w.get("end")
        if end is not None and _as_seconds(end) - start >= 2 * MIN_SPAN_S:
            half = round(start + (_as_seconds(end) - start) / 2, 3)
            yield {**schedule, "window": {**w, "end": seconds(half)}}
    if schedule.get("after"):
        yield {k: v for k, v in schedule.items() if k != "after"}
    if schedule.get("every", 1) > 1:
        yield {k: v for k, v in schedule.items() if k != "every"}
    times = schedule.get("times")
    if times is None and counted:
        yield {**schedule, "times": 1}
    if times is not None and times > 1:
        yield {**schedule, "times": 1}
        if times > 2:
            yield {**schedule, "times": times // 2}
    p = schedule.get("probability")
    if p is not None and p / 2 >= MIN_PROBABILITY:
        yield {**schedule, "probability": round(p / 2, 3)}
