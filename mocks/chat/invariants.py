"""Chat invariants: the app acknowledges genuine webhooks correctly and fast, refuses forged ones,
and backs off its REST calls after ``Alert.RequestOverLimit``."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from harness.durations import Duration
from harness.verdict.base import TARGET_EDGE_S, Facts, Params, Result, brief, invariant, not_exercised, peak_rate
from mocks.chat.vocabulary import (ALARM_COMMAND, ALARM_LIMIT, ALARM_SERVICE, FORGERIES, OVERLIMIT_ALARM, SERVICE,
                                   rest_action)


def answer(cb: Any) -> dict[str, Any] | None:
    text = cb.get("response") or ""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def acknowledged(cb: Any) -> bool:
    a = answer(cb)
    return (cb.get("outcome") == "delivered" and cb.get("status") == 200 and a is not None
            and a.get("ActionStatus") == "OK" and a.get("ErrorCode") == 0)


# delivery faults that keep a webhook from the integration: sent to a port nobody listens on, or to
# another URL — nobody there could acknowledge it
MISDELIVERED = ("refused", "wrong_url")


def _webhooks(facts: Facts) -> list[tuple[Any, str | None]]:
    """Chat callback attempts that reached the integration, with the forgery applied to each (None
    for genuine ones)."""
    out = []
    for cb in facts.of("callback", SERVICE):
        kind = facts.effect_of(cb.get("rule")).get("callback")
        if cb.get("outcome") == "dropped" or kind in MISDELIVERED:
            continue
        out.append((cb, kind))
    return out


class AckParams(Params):
    timeout: Duration = Field(default=2.0, description="the Chat backend's webhook timeout")
    command: str | None = None


@invariant("webhook_acknowledged", AckParams)
def webhook_acknowledged(facts: Facts, p: AckParams) -> Result:
    """Every genuine webhook got HTTP 200 with {ActionStatus: OK, ErrorCode: 0} within the timeout.
    An attempt made while the timeline had the target killed is not judged (nobody could answer it)."""
    seen, bad, down = 0, [], 0
    for cb, forgery in _webhooks(facts):
        if forgery in FORGERIES or (p.command and cb.action != p.command):
            continue
        if facts.target_down_during(cb.t - (cb.get("latency_ms") or 0) / 1000, cb.t):
            down += 1
            continue
        seen += 1
        late = (cb.get("latency_ms") or 0) > p.timeout * 1000
        if not acknowledged(cb) or late:
            bad.append(brief(cb, "cid", "outcome", "status", "latency_ms", "response"))
    while_down = f"; {down} sent while the target was killed not judged" if down else ""
    if not seen:
        return not_exercised("webhook_acknowledged", "no genuine webhook was sent" + (" while the target ran" if down else ""))
    return Result("webhook_acknowledged", not bad, f"{seen - len(bad)} of {seen} webhooks acknowledged in time"
                  + while_down, bad, {"sent": seen, "bad": len(bad), **({"while_target_down": down} if down else {})})


@invariant("forged_webhook_refused", Params)
def forged_webhook_refused(facts: Facts, p: Params) -> Result:
    """Every forged webhook (wrong SdkAppid, bad or missing Sign, stale RequestTime) was refused:
    not acknowledged as OK."""
    seen, bad = 0, []
    for cb, forgery in _webhooks(facts):
        if forgery not in FORGERIES:
            continue
        seen += 1
        if acknowledged(cb):
            bad.append({**brief(cb, "cid", "status", "response"), "forgery": forgery})
    if not seen:
        return not_exercised("forged_webhook_refused", "no forged webhook was sent")
    return Result("forged_webhook_refused", not bad, f"{seen - len(bad)} of {seen} forged webhooks refused",
                  bad, {"sent": seen, "accepted": len(bad)})


class BackoffParams(Params):
    within: Duration = Field(default=5.0, description="time allowed to slow down after the alarm")
    observe: Duration = Field(default=5.0, description="how long after that the rate is watched")


@invariant("backs_off_after_overlimit_alarm", BackoffParams)
def backs_off_after_overlimit_alarm(facts: Facts, p: BackoffParams) -> Result:
    """After Alert.RequestOverLimit was delivered, the app's rate of that REST command drops under
    the alarm's Limit within ``within`` seconds (checked over the next ``observe`` seconds)."""
    alarms = [cb for cb, forgery in _webhooks(facts)
              if cb.action == OVERLIMIT_ALARM and forgery not in FORGERIES and acknowledged(cb)]
    if not alarms:
        return not_exercised("backs_off_after_overlimit_alarm", f"no genuine {OVERLIMIT_ALARM} was acknowledged")
    first = alarms[0]
    body = first.get("json") or {}
    limit = body.get(ALARM_LIMIT)
    command = rest_action(body.get(ALARM_SERVICE), body.get(ALARM_COMMAND))
    start, end = first.t + p.within, first.t + p.within + p.observe
    # a target killed after the alarm is a new process that never got it: judge up to the kill
    kills = [a - TARGET_EDGE_S for a, _ in facts.target_down_spans]   # a kill is journaled just after it
    killed = min((k for k in kills if k > first.t), default=None)
    if killed is not None and killed < end:
        end = killed
        if end <= start:
            return not_exercised("backs_off_after_overlimit_alarm", f"the target was killed {killed - first.t:.2f}s "
                                 f"after the {OVERLIMIT_ALARM} it acknowledged, before its rate was judged")
    times = [e.t for e in facts.of("request", SERVICE, command) if start <= e.t < end]
    peak = peak_rate(times)
    ok = limit is not None and peak <= limit
    evidence = [] if ok else [{**brief(first, "json"), "peak_rate_after": peak, "limit": limit,
                               "window": [round(start, 3), round(end, 3)]}]
    return Result("backs_off_after_overlimit_alarm", ok,
                  f"{command}: peak {peak}/s from {p.within:g}s after the alarm (limit {limit}/s)", evidence,
                  {"peak": peak, "limit": limit})
