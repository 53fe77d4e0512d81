"""``harness explore --sweep``: every single fault that applies, at evenly spaced times — a grid, not a
draw. Where the random search asks "is there a failure somewhere?", the sweep answers "does this
integration survive each kind of fault, at each point of its traffic?", which is what a false alarm
hunt on a correct integration (or a new invariant) needs: the same grid on every run, and each
cell a one-fault scenario that tells which fault and when.

The grid: for each start time ``k · horizon / times`` (k = 0 … times-1) and each of two lengths (a
short blip, 0.2 s, and half the traffic's time, at least 1 s), one candidate per fault kind:

- per service action: each protocol error and reply the service declares, a 503, a 3 s delay, a
  hang, a reset, a partial body — all matching requests inside the window;
- per service that calls back: each delivery fault (drop, duplicate, concurrent duplicates, a storm,
  a delay, reorder, refused) and each forgery it declares, inside the window;
- per service: stopped for the window; each condition it declares, from the start time on (one
  length only);
- per link: each Toxiproxy toxic in each direction, the link cut; proxy faults on ``mitm`` links;
- a target the harness starts and that survives a restart: stopped for the window (never at 0).

Candidate ``i`` is cell ``i`` of the grid, run with ``run_seed(seed, i)``; failures are shrunk and
confirmed exactly as in the search.
"""

from __future__ import annotations

from typing import Any

from harness.explore.faults import Fault, seconds
from harness.explore.generate import DELAYS_MS, NOTE, Menu, protocol_effects, reply_match
from harness.explore.space import calls_back, space_of

SHORT_S = 0.2
# one setting per toxic (the search draws among several): harsh enough to break a careless client
TOXICS: dict[str, dict[str, int]] = {
    "latency": {"latency": 3000}, "timeout": {"timeout": 0}, "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 8, "size_variation": 4, "delay": 10}, "limit_data": {"bytes": 64},
    "bandwidth": {"rate": 1}, "slow_close": {"delay": 1000},
}
CALLBACKS: tuple[dict[str, Any], ...] = (
    {"callback": "drop"}, {"callback": "duplicate", "count": 2},
    {"callback": "duplicate", "count": 3, "concurrent": True},
    {"callback": "storm", "count": 10, "within_ms": 100}, {"callback": "delay", "delay_ms": DELAYS_MS[2]},
    {"callback": "reorder"}, {"callback": "refused"},
)
PROXY: tuple[dict[str, Any], ...] = (
    {"drop_response": True}, {"duplicate_request": 1},
    {"status": 502, "body": NOTE, "content_type": "text/plain"}, {"reset": True}, {"delay_ms": DELAYS_MS[3]},
)


def lengths(menu: Menu) -> tuple[float, float]:
    return SHORT_S, round(max(1.0, menu.horizon / 2), 1)


def starts(menu: Menu, times: int) -> list[float]:
    return sorted({round(menu.horizon * k / times, 1) for k in range(times)})


def kinds(menu: Menu) -> list[tuple[str, Any]]:
    """(what, how) for every single fault that applies: how is a rule (match, effect) without its
    schedule, or ("outage", kind, what), or ("condition", service, name, patch)."""
    out: list[tuple[str, Any]] = []
    for svc in menu.services:
        space = space_of(svc)
        for action in space.actions:
            effects = protocol_effects(svc, action) + [
                {"status": 503, "body": NOTE, "content_type": "text/plain"}, {"delay_ms": DELAYS_MS[3]},
                {"hang": True}, {"reset": True}, {"partial_body": True}]
            out += [("rule", (reply_match(svc, action), effect)) for effect in effects]
        if calls_back(svc):
            effects = list(CALLBACKS) + [{"callback": f} for f in space.forgeries]
            out += [("rule", ({"service": svc}, effect)) for effect in effects]
        out.append(("outage", ("service", svc)))
        out += [("condition", (svc, name, patch)) for name, patch in sorted(space.conditions.items())]
    for link, mitm in menu.links:
        if mitm:
            out += [("rule", ({"link": link}, effect)) for effect in PROXY]
        out += [("rule", ({"link": link}, {"toxic": toxic, "attributes": attrs, "stream": stream}))
                for toxic, attrs in TOXICS.items() for stream in ("downstream", "upstream")]
        out.append(("outage", ("link", link)))
    if menu.restartable_target:
        out.append(("outage", ("target", "")))
    return out


def grid(menu: Menu, times: int) -> list[list[Fault]]:
    """The sweep's candidates, each one fault: start time outermost, so a sweep cut short by
    ``--runs`` or ``--budget`` has tried every kind at the earliest times."""
    out: list[list[Fault]] = []
    every = kinds(menu)
    for at in starts(menu, times):
        for n, span in enumerate(lengths(menu)):
            end = round(at + span, 3)
            for what, how in every:
                if what == "condition":
                    if n == 0:  # a condition lasts the rest of the run: one length
                        svc, name, patch = how
                        out.append([Fault(at, what=svc, condition=name, config=patch)])
                elif what == "outage":
                    kind, thing = how
                    if kind != "target" or at > 0:  # a crash before any work tests nothing
                        out.append([Fault(at, outage=kind, what=thing, until=end)])
                else:
                    match, effect = how
                    out.append([Fault(at, rule={"id": "x1", "match": match, "effect": effect,
                                                "schedule": {"window": {"start": seconds(at), "end": seconds(end)}}})])
    return out
