"""At most one side effect per inbound event, however many copies of it arrived: one use per
pingback, one reply or stored message per webhook ``MsgKey``. Judged from the journal only — the
copies the services sent to the integration, and what the integration then sent on the wire."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import Field

from harness.verdict.base import Facts, Params, Result, brief, event_matches, invariant, lookup, not_exercised

NOT_ON_THE_WIRE = ("dropped",)


class InboundParams(Params):
    inbound: dict[str, Any] = Field(description="filter for the copies sent to the integration, e.g. "
                                    "{kind: callback, service: solver, action: pingback}")
    key: str = Field(description="dotted field that names the event, e.g. params.id or json.MsgKey")
    effect: dict[str, Any] = Field(description="filter for the integration's side effects, e.g. "
                                   "{kind: request, service: solver, action: site.submit}")
    effect_key: str | None = Field(default=None, description="dotted field of a side effect naming "
                                   "its event (default: key)")
    max: int = Field(default=1, ge=0, description="side effects allowed per event")


@invariant("one_effect_per_inbound_event", InboundParams)
def one_effect_per_inbound_event(facts: Facts, p: InboundParams) -> Result:
    """Every inbound event (all copies with the same ``key``) caused at most ``max`` side effects.
    A side effect a fault rule answered, or the service refused (a rate limit, a bad signature: the
    answer carries ``refused``), took no effect and does not count."""
    copies: dict[str, list[Any]] = defaultdict(list)
    for e in facts.events:
        if e.get("outcome") in NOT_ON_THE_WIRE or not event_matches(e, p.inbound):
            continue
        key = lookup(p.key, e.to_dict())
        if key not in (None, ""):
            copies[str(key)].append(e)
    repeated = [k for k, cs in copies.items() if len(cs) > 1]
    if not repeated:
        return not_exercised("one_effect_per_inbound_event", "no inbound event arrived more than once")
    effects: dict[str, list[Any]] = defaultdict(list)
    for e in facts.events:
        if not event_matches(e, p.effect):
            continue
        response = facts.response_to(e) if e.kind == "request" else None
        if response is not None and (response.get("rule") or response.get("refused")):
            continue
        key = lookup(p.effect_key or p.key, e.to_dict())
        if key is not None and str(key) in copies:
            effects[str(key)].append(e)
    bad = [{"key": k, "copies": len(copies[k]), "effects": len(effects[k]),
            "history": [brief(c, "copy", "outcome") for c in copies[k][:5]]
            + [brief(x, "rid") for x in effects[k][:5]]} for k in copies if len(effects[k]) > p.max]
    most = max((len(v) for v in effects.values()), default=0)
    summary = (f"{len(copies)} inbound events ({len(repeated)} arrived more than once): "
               f"{len(bad)} with more than {p.max} side effects (most: {most})")
    return Result("one_effect_per_inbound_event", not bad, summary, bad,
                  {"events": len(copies), "repeated": len(repeated), "over": len(bad), "most_effects": most})
