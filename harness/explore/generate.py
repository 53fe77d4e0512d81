"""Seeded fault timelines drawn from the whole fault language that applies to a base scenario.

``Menu.of(scenario)`` reads what is there to break: the services it runs (each one's
``FaultSpace``: requests, protocol errors, forgeries; callbacks when it calls back), its links
(toxics, cuts, and proxy faults where ``mitm: true``) and a target the harness starts (stop and
start). ``candidate(menu, seed, i)`` depends only on (seed, i): the same seed gives the same search,
whatever ran before or beside it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from harness.explore.faults import Fault, seconds
from harness.explore.space import calls_back, space_of
from harness.scenario.model import Scenario

FAULTS_PER_CANDIDATE = ((1, 4), (2, 3), (3, 2), (4, 1))   # (how many faults, weight)
NOTE = "injected by harness explore"
# delays (ms): 375·2^k, so that neither they nor their halves (the shrinker's) sit on the round
# timeouts clients use (1 s, 2 s, 3 s …), where whether the client waited would be a coin toss
DELAYS_MS = (375, 750, 1500, 3000, 6000)
TOXICS: dict[str, Callable[[random.Random], dict[str, int]]] = {
    "latency": lambda r: {"latency": r.choice([500, 1000, 3000, 5000])},
    "timeout": lambda r: {"timeout": r.choice([0, 1000])},
    "reset_peer": lambda r: {"timeout": 0},
    "slicer": lambda r: {"average_size": 8, "size_variation": 4, "delay": 10},
    "limit_data": lambda r: {"bytes": r.choice([64, 256])},
    "bandwidth": lambda r: {"rate": r.choice([1, 4])},
    "slow_close": lambda r: {"delay": 1000},
}


@dataclass
class Menu:
    services: list[str]
    links: list[tuple[str, bool]] = field(default_factory=list)   # (name, mitm)
    restartable_target: bool = False
    horizon: float = 1.0   # run time (s) in which the traffic happens: faults start within it
    # service → the callbacks the base's timeline emits (``emit.event``): a callback fault may aim at
    # one of them, not only at whichever callbacks come first
    emitted: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, scenario: Scenario) -> "Menu":
        from mocks.registry import SERVICES
        target = scenario.target
        return cls(services=[s for s in scenario.services if s in SERVICES],
                   links=[(link.name, link.mitm) for link in scenario.links],
                   restartable_target=target is not None and target.command is not None
                   and target.survives_restart,
                   horizon=horizon(scenario), emitted=emitted(scenario))

    def families(self) -> list[tuple[int, Callable[[random.Random, float], Fault]]]:
        """(weight, draw) for every kind of fault that applies."""
        out: list[tuple[int, Callable[[random.Random, float], Fault]]] = []
        for svc in self.services:
            space = space_of(svc)
            if space.actions:
                out.append((4, lambda r, at, s=svc: Fault(at, rule=_reply_rule(r, s, at, self.horizon))))
            if calls_back(svc):
                out.append((3, lambda r, at, s=svc: Fault(at, rule=_callback_rule(r, s, at, self.horizon,
                                                                                  self.emitted.get(s, [])))))
            out.append((1, lambda r, at, s=svc: Fault(at, outage="service", what=s, until=_end(r, at, self.horizon))))
            if space.conditions:
                out.append((1, lambda r, at, s=svc, c=space.conditions: _condition(r, at, s, c)))
        for name, mitm in self.links:
            if mitm:
                out.append((2, lambda r, at, n=name: Fault(at, rule=_proxy_rule(r, n, at, self.horizon))))
            out.append((2, lambda r, at, n=name: Fault(at, rule=_toxic_rule(r, n, at, self.horizon))))
            out.append((1, lambda r, at, n=name: Fault(at, outage="link", what=n, until=_end(r, at, self.horizon))))
        if self.restartable_target:
            # a crash tests something only while work is in flight: not at 0, but anywhere in the
            # traffic's time (whatever the candidate's start drew), and as often as a reply fault
            out.append((2, lambda r, at: _crash(r, self.horizon)))
        return out


def horizon(scenario: Scenario) -> float:
    """When the base's traffic is over (scenario time, s): from each flow's start, duration, count
    and rate (a flow without rate or duration: 0.1 s per request per concurrent slot, at least 1 s)."""
    ends = [1.0]
    for flow in scenario.traffic:
        count = flow.count if flow.count is not None else 1
        if flow.duration is not None:
            span = flow.duration
        elif flow.rate:
            span = count / flow.rate
        else:
            span = max(1.0, count * 0.1 / flow.concurrency)
        ends.append(flow.start + span)
    ends += [s.at for s in scenario.timeline if s.at is not None]
    return round(max(ends), 3)


def emitted(scenario: Scenario) -> dict[str, list[str]]:
    """service → the events the base's timeline emits, in order of first appearance."""
    out: dict[str, list[str]] = {}
    for step in scenario.timeline:
        emit = step.emit
        if emit is not None and emit.event not in out.setdefault(emit.service, []):
            out[emit.service].append(emit.event)
    return out


def candidate(menu: Menu, seed: int, index: int) -> list[Fault]:
    """Candidate ``index`` of the search with this seed: 1–4 faults, each of a kind that applies."""
    rng = random.Random(f"harness-explore:{seed}:{index}")
    families = menu.families()
    if not families:
        return []
    counts, weights = zip(*FAULTS_PER_CANDIDATE)
    n = rng.choices(counts, weights)[0]
    draws, dweights = [d for _, d in families], [w for w, _ in families]
    faults = []
    for i in range(n):
        at = 0.0 if rng.random() < 0.5 else round(rng.uniform(0, menu.horizon * 0.6), 1)
        fault = rng.choices(draws, dweights)[0](rng, at)
        if fault.rule is None and any((f.outage, f.condition, f.what) == (fault.outage, fault.condition, fault.what)
                                      for f in faults):
            continue  # one outage (condition) of a thing per candidate: a second would only overlap the first
        if fault.rule is not None:
            fault = Fault(fault.at, rule={"id": f"x{i + 1}", **fault.rule})
        faults.append(fault)
    return faults


def run_seed(seed: int, index: int) -> int:
    """The run seed of candidate ``index`` (probabilities and variables roll from it)."""
    return random.Random(f"harness-explore-run:{seed}:{index}").randrange(1, 2**31)


# --- the kinds of fault --------------------------------------------------------------------------
def _span(rng: random.Random, horizon: float) -> float:
    return round(max(0.2, rng.uniform(0.15, 0.8) * horizon), 1)


def _end(rng: random.Random, at: float, horizon: float) -> float:
    return round(at + _span(rng, horizon), 1)


def _schedule(rng: random.Random, at: float, horizon: float) -> dict[str, Any]:
    """Every fault ends — after a few matches or with its window — so that a correct integration
    can recover: a service that fails forever is no test of resilience."""
    kind = rng.choice(("times", "after", "probability", "every", "window"))
    times = {"times": rng.randint(1, 5)}
    if kind == "after":
        return {"after": rng.randint(1, 3), "times": rng.randint(1, 3)}
    if kind == "probability":
        return {"probability": rng.choice([0.2, 0.5, 0.8]), **times}
    if kind == "every":
        return {"every": rng.choice([2, 3]), **times}
    if kind == "window":
        return {"window": {"start": seconds(at), "end": seconds(_end(rng, at, horizon))}}
    return times


def _rule(match: dict[str, Any], effect: dict[str, Any], schedule: dict[str, Any]) -> dict[str, Any]:
    return {"match": match, "effect": effect, **({"schedule": schedule} if schedule else {})}


def protocol_effects(service: str, action: str | None) -> list[dict[str, Any]]:
    """The protocol answers the service declares for this action (``None``: any action): its errors
    on any action, those only this action answers, and its other replies."""
    space = space_of(service)
    errors = space.errors + (space.action_errors.get(action, ()) if action is not None else ())
    return [{"error": e} for e in errors] + [dict(r) for r in space.replies]


def reply_match(service: str, action: str | None) -> dict[str, Any]:
    return {"service": service, **({"action": action} if action is not None else {})}


def _reply_rule(rng: random.Random, service: str, at: float, horizon: float) -> dict[str, Any]:
    action = rng.choice(space_of(service).actions)
    protocol = protocol_effects(service, action)
    kind = rng.choice(("protocol", "protocol", "status", "delay", "hang", "reset", "partial")
                      if protocol else ("status", "delay", "hang", "reset", "partial"))
    if kind == "protocol":
        effect = rng.choice(protocol)
        if rng.random() < 0.2:
            effect = {**effect, "delay_ms": rng.choice(DELAYS_MS[:3])}
    elif kind == "status":
        effect = {"status": rng.choice([500, 502, 503]), "body": NOTE, "content_type": "text/plain"}
    elif kind == "delay":
        effect = {"delay_ms": rng.choice(DELAYS_MS)}
    elif kind == "partial":
        effect = {"partial_body": True}
    else:
        effect = {kind: True}
    return _rule(reply_match(service, action), effect, _schedule(rng, at, horizon))


def _callback_rule(rng: random.Random, service: str, at: float, horizon: float,
                   emitted: list[str]) -> dict[str, Any]:
    kinds: list[dict[str, Any]] = [
        {"callback": "drop"},
        {"callback": "duplicate", "count": rng.randint(1, 3)},
        {"callback": "duplicate", "count": rng.randint(1, 4), "concurrent": True},
        {"callback": "storm", "count": rng.randint(5, 20), "within_ms": rng.choice([0, 100, 500])},
        {"callback": "delay", "delay_ms": rng.choice(DELAYS_MS[1:])},
        {"callback": "reorder"},
        {"callback": "refused"},
    ]
    forgeries = [{"callback": f} for f in space_of(service).forgeries]
    # two families, equally likely: delivery faults and forgeries (each forgery checks its own field)
    family = forgeries if forgeries and rng.random() < 0.5 else kinds
    effect = rng.choice(family)
    # half of them aim at one event the base emits (else: the first callbacks, often the busiest kind)
    match = {"service": service, **({"action": rng.choice(emitted)} if emitted and rng.random() < 0.5 else {})}
    return _rule(match, effect, _schedule(rng, at, horizon))


def _crash(rng: random.Random, horizon: float) -> Fault:
    at = round(rng.uniform(0.15, 1.0) * horizon, 1)
    return Fault(at, outage="target", until=_end(rng, at, horizon))


def _condition(rng: random.Random, at: float, service: str, conditions: dict[str, dict[str, Any]]) -> Fault:
    name = rng.choice(sorted(conditions))
    return Fault(at, what=service, condition=name, config=conditions[name])


def _proxy_rule(rng: random.Random, link: str, at: float, horizon: float) -> dict[str, Any]:
    effect = rng.choice([{"drop_response": True}, {"duplicate_request": rng.randint(1, 2)},
                         {"status": 502, "body": NOTE, "content_type": "text/plain"}, {"reset": True},
                         {"delay_ms": rng.choice(DELAYS_MS[2:4])}])
    return _rule({"link": link}, effect, _schedule(rng, at, horizon))


def _toxic_rule(rng: random.Random, link: str, at: float, horizon: float) -> dict[str, Any]:
    toxic = rng.choice(sorted(TOXICS))
    effect = {"toxic": toxic, "attributes": TOXICS[toxic](rng),
              "stream": rng.choice(["downstream", "upstream"])}
    # toxics count no requests: a window
    return _rule({"link": link}, effect, {"window": {"start": seconds(at), "end": seconds(_end(rng, at, horizon))}})
