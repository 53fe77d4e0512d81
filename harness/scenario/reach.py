"""Checks that everything a scenario asks for can take effect in its run, made when it is loaded:
every rule names a known service and an action of its vocabulary, some component of the run can
apply its effect, no two rules share an id, every step and window starts before ``max_duration``,
every expected invariant's service runs. A rule, step or expectation that could never take effect
would otherwise only leave a run INCONCLUSIVE (or, worse, PASS). Each failure is one
``ScenarioError`` naming the file, line and field."""

from __future__ import annotations

from typing import Any, Iterator

from harness.faults.rules import Applier, Exact, Rule, pattern_matches
from harness.scenario.model import Scenario
from harness.scenario.yamlpos import Positions, ScenarioError, where
from mocks.registry import SERVICES, actions

Path = tuple[Any, ...]


class _Where:
    def __init__(self, positions: Positions, name: str):
        self.positions, self.name = positions, name

    def fail(self, path: Path, message: str) -> ScenarioError:
        from harness.scenario.loader import dotted
        return ScenarioError(f"{where(self.positions, path, self.name)}: {dotted(path)}: {message}")


def check(scenario: Scenario, positions: Positions, name: str) -> None:
    at = _Where(positions, name)
    _check_times(scenario, at)
    _check_rule_ids(scenario, at)
    for path, rule in rules_of(scenario):
        _check_rule(scenario, rule, path, at)
    _check_invariants(scenario, at)


def rules_of(scenario: Scenario) -> Iterator[tuple[Path, Rule]]:
    """Every rule the timeline adds, with its place in the file."""
    for i, step in enumerate(scenario.timeline):
        for j, rule in enumerate(step.add_rules or ()):
            yield ("timeline", i, "add_rules", j), rule


def plain(pattern: Any) -> str | None:
    """The string a match field names literally (a glob / regex: None, it is not checked)."""
    if isinstance(pattern, Exact):
        pattern = pattern.exact
    return pattern if isinstance(pattern, str) else None


def _secs(seconds: float) -> str:
    return f"{seconds:g}s"


def _names(items: Any) -> str:
    return ", ".join(sorted(items)) or "none"


def _check_times(scenario: Scenario, at: _Where) -> None:
    limit = scenario.max_duration
    beyond = f"is at or beyond max_duration ({_secs(limit)})"
    for i, step in enumerate(scenario.timeline):
        if step.at is not None and step.at >= limit:
            raise at.fail(("timeline", i, "at"), f"{_secs(step.at)} {beyond}: the step would never play")
        if step.after is not None and step.delay >= limit:
            raise at.fail(("timeline", i, "delay"), f"{_secs(step.delay)} {beyond}: "
                          "the step would never play")
    for i, flow in enumerate(scenario.traffic):
        if flow.start >= limit:
            raise at.fail(("traffic", i, "start"), f"{_secs(flow.start)} {beyond}: "
                          "the flow would never send")
    for path, rule in rules_of(scenario):
        window = rule.schedule.window
        if window is not None and window.start >= limit:
            raise at.fail(path + ("schedule", "window", "start"), f"{_secs(window.start)} {beyond}: "
                          "the rule would never fire")


def _check_rule_ids(scenario: Scenario, at: _Where) -> None:
    """At run time a rule with an existing id replaces it in place; in one file two rules with one id
    are a mistake — unless a step removed the first (``remove_rules`` / ``clear_rules``) in between."""
    seen: dict[str, Path] = {}
    for i, step in enumerate(scenario.timeline):
        if step.clear_rules:
            seen.clear()
        for rid in step.remove_rules or ():
            seen.pop(rid, None)
        for j, rule in enumerate(step.add_rules or ()):
            if rule.id is None:
                continue
            path = ("timeline", i, "add_rules", j)
            if rule.id in seen:
                first = seen[rule.id]
                line = where(at.positions, first, "").rpartition(":")[2]
                raise at.fail(path + ("id",), f"rule id {rule.id!r} is already used by {_dotted(first)}"
                              + (f" (line {line})" if line else "") + "; give each rule its own id")
            seen[rule.id] = path


def _dotted(path: Path) -> str:
    from harness.scenario.loader import dotted
    return dotted(path)


def _check_rule(scenario: Scenario, rule: Rule, path: Path, at: _Where) -> None:
    match = rule.match
    service = plain(match.service)
    if service is not None and service not in SERVICES:
        raise at.fail(path + ("match", "service"), f"unknown service {service!r} (known: {_names(SERVICES)})")
    action = plain(match.action)
    if action is not None:
        names = [service] if service is not None else list(SERVICES)
        known = [actions(s) for s in names]
        if all(k is not None for k in known) and not any(action in k for k in known if k is not None):
            of = f"{service}'s" if service is not None else "any service's"
            listed = sorted(set().union(*known)) if known else []
            raise at.fail(path + ("match", "action"), f"{action!r} is not one of {of} actions "
                          f"(known: {', '.join(listed)})")
    _check_applier(scenario, rule, service, action, path, at)


def _check_applier(scenario: Scenario, rule: Rule, service: str | None, action: str | None, path: Path,
                   at: _Where) -> None:
    """A mock rule needs a mock of its service in the run, a callback rule one that sends callbacks."""
    applier = rule.applier
    if applier not in (Applier.MOCK, Applier.CALLBACK):
        _check_link(scenario, rule, path, at)
        return
    callback = applier is Applier.CALLBACK
    running = [s for s in scenario.services if s in SERVICES]
    if service is not None:
        if callback and not SERVICES[service].calls_back:
            raise at.fail(path + ("effect", "callback"), f"{service} sends no callbacks, so the rule could never "
                          f"fire (services that do: {_names(s for s in SERVICES if SERVICES[s].calls_back)})")
        if service not in running:
            raise at.fail(path + ("match", "service"), f"no mock of {service!r} runs in this scenario, so the "
                          f"rule could never fire (services: {_names(running)})")
        return
    able = [s for s in running if (SERVICES[s].calls_back or not callback)
            and (action is None or actions(s) is None or action in actions(s))]  # type: ignore[operator]
    if not able:
        does = "sends callbacks" if callback else "runs a mock"
        what = f" with the action {action!r}" if action is not None else ""
        raise at.fail(path + (("effect", "callback") if callback else ("match",)),
                      f"no service of this scenario {does}{what}, so the rule could never fire "
                      f"(services: {_names(running)})")


def _check_link(scenario: Scenario, rule: Rule, path: Path, at: _Where) -> None:
    """A Toxiproxy or mitmproxy rule needs a declared link it selects (mitmproxy: one with ``mitm: true``)."""
    mitm = rule.applier is Applier.MITM
    links = [link.name for link in scenario.links if link.mitm or not mitm]
    selected = [n for n in links if rule.match.link is None or pattern_matches(rule.match.link, n)]
    if selected:
        return
    what = "links with mitm: true" if mitm else "links"
    if rule.match.link is None:
        raise at.fail(path + ("effect",), f"the {rule.applier.component} applies this rule on a link, and this "
                      f"scenario declares no {what}")
    raise at.fail(path + ("match", "link"), f"selects none of this scenario's {what} ({_names(links)}), "
                  f"so the {rule.applier.component} could never apply it")


def _check_invariants(scenario: Scenario, at: _Where) -> None:
    from harness.verdict import invariant_service
    for i, item in enumerate(scenario.expect):
        (inv,) = item
        service = invariant_service(inv)
        if service is not None and service not in scenario.services:
            raise at.fail(("expect", i, inv), f"an invariant of the {service} service, which this scenario does "
                          f"not run (services: {_names(scenario.services)})")
