"""Captcha invariants: fail open when verification is degraded, enforce it when healthy, and handle
disaster-recovery (``terror_``) tickets.

The driver journals each request it sent to the target with the tickets it carried (``vars``) and
what the target answered. The captcha mock journals each DescribeCaptchaResult with its Ticket and
what it answered (or that it hung / reset). Matching the two by ticket says, per user request, how
verification went and what the target decided.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections import Counter
from typing import Any, Literal

from pydantic import Field

from harness.durations import Duration
from harness.verdict import link_faults
from harness.verdict.base import Facts, Params, Result, brief, delivered, invariant, not_exercised
from mocks.captcha.vocabulary import DR_TICKET, SERVICE, TICKET_PARAM, TICKET_VARS, VERIFY_ACTIONS

DEGRADED = ("internal_error", "busy", "unavailable", "slow")


def ticket_of(driver_event: Any) -> str | None:
    kinds = driver_event.get("var_kinds") or {}
    values = driver_event.get("vars") or {}
    for name, kind in kinds.items():
        if kind in TICKET_VARS and isinstance(values.get(name), dict):
            return values[name].get("ticket")
    return None


def dr_info(driver_event: Any) -> dict[str, Any] | None:
    kinds = driver_event.get("var_kinds") or {}
    values = driver_event.get("vars") or {}
    for name, kind in kinds.items():
        if kind == DR_TICKET and isinstance(values.get(name), dict):
            return values[name]
    return None


class Verifications:
    """Ticket → the verification calls the target made for it, each classified."""

    def __init__(self, facts: Facts, slow_ms: float):
        self.facts = facts
        self.by_ticket: dict[str, list[tuple[Any, Any, str]]] = {}
        for req in facts.of("request", SERVICE):
            if req.action not in VERIFY_ACTIONS:
                continue
            ticket = (req.get("params") or {}).get(TICKET_PARAM)
            resp = facts.response_to(req)
            self.by_ticket.setdefault(str(ticket), []).append((req, resp, self._classify(resp, slow_ms)))

    def _classify(self, resp: Any, slow_ms: float) -> str:
        if not delivered(resp) or resp.get("status") != 200:  # client_gone, reset, partial, hung
            return "unavailable"
        body = resp.get("body") if isinstance(resp.get("body"), dict) else {}
        r = body.get("Response", {}) if isinstance(body.get("Response"), dict) else {}
        err = r.get("Error", {}).get("Code") if isinstance(r.get("Error"), dict) else None
        if err == "InternalError":
            return "internal_error"
        if err is not None:
            return f"error:{err}"
        if r.get("CaptchaCode") == 26:
            return "busy"
        effect = self.facts.effect_of(resp.get("rule"))
        if (effect.get("delay_ms") or 0) >= slow_ms:
            return "slow"
        evil = ":evil" if r.get("EvilLevel") == 100 else ""
        return f"code:{r.get('CaptchaCode')}{evil}"

    def states(self, ticket: str | None) -> list[str]:
        return [c for _, _, c in self.by_ticket.get(str(ticket), [])] if ticket else []

    def unexercised(self, name: str, what: str) -> Result:
        """``not_exercised``, unless the target's verification calls were refused (signature, key,
        parameters): then the summary says so and why, from the journaled refusals, and each refused
        call is a line of evidence."""
        calls = [(req, resp, state) for entries in self.by_ticket.values() for req, resp, state in entries]
        refused = [(req, resp, state) for req, resp, state in calls if state.startswith("error:")]
        if not refused:
            return not_exercised(name, what)
        causes = Counter((state.removeprefix("error:"), _check(resp)) for _, resp, state in refused)
        first: dict[tuple[str, Any], str | None] = {}
        for _, resp, state in refused:
            first.setdefault((state.removeprefix("error:"), _check(resp)), _why(resp))
        share = f"every verification call ({len(calls)}) was" if len(refused) == len(calls) else \
            f"{len(refused)} of {len(calls)} verification calls were"
        summary = f"not exercised: {what}: {share} refused: " + "; ".join(
            code + (f" ×{n}" if n > 1 else "") + (f" ({first[code, check]})" if first[code, check] else "")
            for (code, check), n in causes.most_common())
        evidence = [{"rid": req.get("rid"), "error": state.removeprefix("error:"), **_refused(resp)}
                    for req, resp, state in refused]
        return Result(name, False, summary, evidence, {"verification_calls": len(calls), "refused": len(refused)},
                      exercised=False)

    def faulted_during(self, start: float, end: float) -> bool:
        """Was any verification call (of any ticket) faulted or degraded at a moment of [start, end]?
        Then a call of this request's that never reached the mock may have been lost on the way (a
        client pool held by hung calls, a pooled connection reset): no proof of a skipped verification.
        (A call without an answer lasts to the end of any span it started before.)"""
        starts, latest_end, first_open = self._faulted
        i = bisect.bisect_right(starts, end)  # the answered faulted calls that started by ``end``
        return (i > 0 and latest_end[i - 1] >= start) or first_open <= end

    @functools.cached_property
    def _faulted(self) -> tuple[list[float], list[float], float]:
        """The faulted calls as a query of two bisects (a load run judges thousands of requests):
        answered ones sorted by start, with the latest end among those started so far; the earliest
        start of one never answered."""
        spans, first_open = [], math.inf
        for calls in self.by_ticket.values():
            for req, resp, state in calls:
                if not state.startswith("code:") or (resp is not None and resp.get("rule")):
                    if resp is None:
                        first_open = min(first_open, req.t)
                    else:
                        spans.append((req.t, resp.t))
        spans.sort()
        latest, latest_end = -math.inf, []
        for _, stop in spans:
            latest = max(latest, stop)
            latest_end.append(latest)
        return [a for a, _ in spans], latest_end, first_open


def _refused(resp: Any) -> dict[str, Any]:
    refused = resp.get("refused") if resp is not None else None
    return refused if isinstance(refused, dict) else {}


def _check(resp: Any) -> str | None:
    return _refused(resp).get("check")


def _why(resp: Any) -> str | None:
    return _refused(resp).get("why")


def link_fault_during(facts: Facts, start: float, end: float, link: str = f"integration->{SERVICE}",
                      stops: bool = True) -> bool:
    """Was the link down or carrying a toxic, or (``stops``) the captcha service stopped, at any
    moment of [start, end]?"""
    return link_faults.link_fault_during(facts, start, end, link, SERVICE if stops else None)


def request_span(d: Any) -> tuple[float, float]:
    return d.t - (d.get("latency_ms") or 0) / 1000, d.t


def killed_unanswered(facts: Facts, d: Any) -> bool:
    """The request got no answer and the target decided nothing: it never connected (a target
    starting again is not listening yet), or the timeline had the target killed (from
    ``target_killed`` to the next ``target_started``) at some moment of it."""
    return d.get("status") is None and (bool(d.get("unreached"))
                                        or facts.target_down_during(*request_span(d), edge=0.0))


class FlowParams(Params):
    flow: str | None = Field(default=None, description="only requests of this traffic flow")
    allowed_status: list[int] = Field(default_factory=lambda: [200])
    denied_status: list[int] = Field(default_factory=lambda: [400, 401, 403])


class FailOpenParams(FlowParams):
    max_latency: Duration = Field(default=5.0, description="the user must get through within this")
    slow_ms: float = Field(default=3000, description="a mock delay this long counts as a timeout")


@invariant("verification_fail_open", FailOpenParams)
def verification_fail_open(facts: Facts, p: FailOpenParams) -> Result:
    """When DescribeCaptchaResult timed out, hung, reset, answered InternalError or CaptchaCode 26,
    the target still let the user through, within the latency bound. A login is judged by what the
    target could know: the last answer it got. One whose retry got a definite answer (a bad ticket
    after an InternalError) was not degraded; ``verification_enforced`` judges it. One refused after
    the mock sent a refusing answer (a bad ticket) while the link carried a fault is not judged: the
    answer may have crossed the link in time, and then refusing was right. A forged
    disaster-recovery ticket must be refused whatever the service does: ``forged_dr_ticket_refused``
    judges it."""
    v = Verifications(facts, p.slow_ms)
    degraded, retried, refused_on_answer, bad = 0, 0, 0, []
    for d in facts.driver(p.flow):
        dr = dr_info(d)
        if dr is not None and not dr.get("valid"):
            continue
        states = v.states(ticket_of(d))
        if states and states[-1].startswith("error:"):
            # the last call was refused (RequestLimitExceeded, ResourceUnavailable …): whether a
            # backend fails open on that is its own policy (Tencent's docs do not say), judged by
            # neither invariant — also when an outage came before that answer
            continue
        # a service stopped after it gave this request a definite answer (code:…) degraded nothing
        stops = not (states and states[-1].startswith("code:"))
        if not (states and states[-1] in DEGRADED):
            if not link_fault_during(facts, *request_span(d), stops=stops):
                retried += any(s in DEGRADED for s in states)
                continue
            if states and states[-1] != "code:1" and d.get("status") in p.denied_status:
                # a refusing answer (a bad ticket) was delivered while the link carried a fault: if it
                # crossed the link in time, refusing was right; the journal cannot tell, so not judged
                refused_on_answer += 1
                continue
        if killed_unanswered(facts, d):
            continue
        degraded += 1
        latency = (d.get("latency_ms") or 0) / 1000
        if d.get("status") not in p.allowed_status or latency > p.max_latency:
            bad.append({**brief(d, "flow", "n", "status", "latency_ms", "error"), "verification": states or ["unreached"]})
    recovered = f"; {retried} more got a definite answer on a later call" if retried else ""
    if refused_on_answer:
        recovered += (f"; {refused_on_answer} refused on a refusing answer sent while the link carried a fault "
                      "(not judged: it may have arrived)")
    if not degraded:
        return v.unexercised("verification_fail_open", "no request met a degraded captcha service" + recovered)
    summary = f"{degraded - len(bad)} of {degraded} users met a degraded captcha service and got through" + recovered
    return Result("verification_fail_open", not bad, summary, bad, {"degraded": degraded, "blocked": len(bad)})


class EnforcedParams(FlowParams):
    slow_ms: float = 3000


@invariant("verification_enforced", EnforcedParams)
def verification_enforced(facts: Facts, p: EnforcedParams) -> Result:
    """While the captcha service was healthy, bad tickets were refused and good ones accepted;
    a ticket the target never verified, while no verification call was faulted, is a skipped
    verification."""
    v = Verifications(facts, p.slow_ms)
    checked, bad = 0, []
    for d in facts.driver(p.flow):
        ticket = ticket_of(d)
        if ticket is None or dr_info(d) is not None:
            continue
        states = v.states(ticket)
        if link_fault_during(facts, *request_span(d)) or killed_unanswered(facts, d):
            continue
        if not states:
            if v.faulted_during(*request_span(d)):
                continue
            checked += 1
            if d.get("status") in p.allowed_status:
                bad.append({**brief(d, "flow", "n", "status"), "ticket": ticket, "why": "let through without verification"})
            continue
        last = states[-1]
        if not last.startswith("code:"):
            continue
        checked += 1
        should_allow = last == "code:1"
        allowed = d.get("status") in p.allowed_status
        if allowed != should_allow:
            bad.append({**brief(d, "flow", "n", "status"), "ticket": ticket, "verification": last,
                        "why": "bad ticket let through" if allowed else "good ticket refused"})
    if not checked:
        return v.unexercised("verification_enforced", "no request was verified by a healthy captcha service")
    return Result("verification_enforced", not bad, f"{checked - len(bad)} of {checked} healthy verifications "
                  "decided correctly", bad, {"checked": checked, "wrong": len(bad)})


class DrParams(FlowParams):
    slow_ms: float = Field(default=3000, description="a mock delay this long counts as a timeout")


class DrAcceptedParams(DrParams):
    while_healthy: Literal["accept", "refuse", "either"] = Field(
        default="either", description="policy for a fresh DR ticket of our app while the verification API "
        "is healthy: accept (let in), refuse (only a real ticket will do) or either (not judged); during "
        "an outage one is always let in")


def _outage(facts: Facts, v: Verifications, d: Any) -> bool:
    """Was the verification API down or degraded while this request was served: the service stopped,
    its link cut or carrying a toxic, or a verification call (of any ticket) faulted?"""
    span = request_span(d)
    return link_fault_during(facts, *span) or v.faulted_during(*span)


def _dr_requests(facts: Facts, p: DrParams, valid: bool) -> list[tuple[Any, dict[str, Any], bool]]:
    """(driver event, DR ticket, sent during an outage) for each request with a DR ticket that is
    ``valid`` (fresh, our appid) or not."""
    v = Verifications(facts, p.slow_ms)
    return [(d, info, _outage(facts, v, d)) for d in facts.driver(p.flow)
            for info in [dr_info(d)] if info is not None and bool(info.get("valid")) == valid]


def _dr_bad(d: Any, info: dict[str, Any], outage: bool, why: str) -> dict[str, Any]:
    return {**brief(d, "flow", "n", "status"), "ticket": info.get("ticket"), "ticket_is": info.get("why"),
            "api": "outage" if outage else "healthy", "why": why}


@invariant("dr_ticket_accepted", DrAcceptedParams)
def dr_ticket_accepted(facts: Facts, p: DrAcceptedParams) -> Result:
    """A fresh disaster-recovery ticket (terror_<code>_<appid>_<ts>, our appid) lets the user in while
    the verification API is down or degraded. While it is healthy, ``while_healthy`` is the policy."""
    sent = _dr_requests(facts, p, True)
    if not sent:
        return not_exercised("dr_ticket_accepted", "no valid disaster-recovery ticket was sent")
    bad, judged = [], 0
    for d, info, outage in sent:
        want = "accept" if outage else p.while_healthy
        if want == "either":
            continue
        judged += 1
        allowed = d.get("status") in p.allowed_status
        if allowed != (want == "accept"):
            why = ("refused during an outage" if outage else f"{'refused' if want == 'accept' else 'let in'} "
                   f"while the API was healthy (while_healthy: {want})")
            bad.append(_dr_bad(d, info, outage, why))
    during = sum(outage for _, _, outage in sent)
    summary = (f"{during - sum(b['api'] == 'outage' for b in bad)} of {during} valid DR tickets accepted during "
               f"an outage; {len(sent) - during} sent while the API was healthy (while_healthy: {p.while_healthy})")
    if bad:
        summary += f": {len(bad)} decided wrongly"
    return Result("dr_ticket_accepted", not bad, summary, bad,
                  {"sent": len(sent), "during_outage": during, "judged": judged, "wrong": len(bad)})


@invariant("forged_dr_ticket_refused", DrParams)
def forged_dr_ticket_refused(facts: Facts, p: DrParams) -> Result:
    """A disaster-recovery ticket with another app's id or a stale timestamp is refused, whether the
    verification API is healthy or down (an outage is when a forger tries them)."""
    sent = _dr_requests(facts, p, False)
    if not sent:
        return not_exercised("forged_dr_ticket_refused", "no forged disaster-recovery ticket was sent")
    bad = [_dr_bad(d, info, outage, "let in") for d, info, outage in sent if d.get("status") in p.allowed_status]
    during = sum(outage for _, _, outage in sent)
    return Result("forged_dr_ticket_refused", not bad, f"{len(sent) - len(bad)} of {len(sent)} forged DR tickets "
                  f"refused ({during} during an outage)", bad,
                  {"sent": len(sent), "during_outage": during, "wrong": len(bad)})
