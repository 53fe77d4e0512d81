"""The captcha invariants' time indexes answer exactly what the journal walks they replace answered.

A load run judges thousands of requests, and each asked "was a link fault active during this
request?" by walking the journal from its start: quadratic, minutes for an 80,000-event journal
(bench/scale.py's 200-user step never finished). The indexes answer with two bisects; these
property tests hold them to the old walks, kept here as the reference."""

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.journal import Event
from harness.verdict.base import Facts
from mocks.captcha import invariants
from harness.verdict.link_faults import EDGE_S, STOPPED, apply_fault_change
from mocks.captcha.invariants import Verifications, link_fault_during

LINK = "integration->captcha"


def walk_link_fault_during(facts, start, end, link=LINK, stops=True):
    """The journal walk as it was before the index (what each event changes is the invariants' own
    ``apply_fault_change``: the index and the walk differ only in how they answer the span)."""
    active = set()
    for e in facts.events:
        if e.t > end + EDGE_S:
            break
        was = bool(active)
        if not apply_fault_change(active, e, link, "captcha" if stops else None):
            continue
        if e.t >= start and (was or active):
            return True
    return bool(active)


def walk_faulted_during(v, start, end):
    for calls in v.by_ticket.values():
        for req, resp, state in calls:
            bad = not state.startswith("code:") or (resp is not None and resp.get("rule"))
            if bad and req.t <= end and (resp.t if resp is not None else end) >= start:
                return True
    return False


_FAULT = st.one_of(
    st.tuples(st.just("link"), st.sampled_from([LINK, "other"]), st.sampled_from(["down", "up"]), st.none()),
    st.tuples(st.just("toxic"), st.sampled_from([LINK, "other"]), st.sampled_from(["added", "removed"]),
              st.sampled_from(["r1", "r2"])),
    st.tuples(st.just("step"), st.none(), st.sampled_from(list(STOPPED)), st.sampled_from(["captcha", "solver"])),
    st.tuples(st.just("request"), st.none(), st.none(), st.none()),
)


# times on the grid the events use too (exact binary fractions), so that spans start and end exactly at
# events, and within EDGE_S of them, as well as between
_GRID = [k / 8 for k in range(0, 25)] + [k / 8 - EDGE_S for k in range(1, 25)]
_AT = st.one_of(st.floats(0, 3), st.sampled_from(_GRID))
_LENGTH = st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.125, 0.25, 0.5]))


def _facts(items):
    events, t = [], 0.0
    for seq, ((kind, link, op, extra), gap) in enumerate(items, 1):
        t += gap
        if kind == "step":
            data = {"step": op}
            events.append(Event(seq, 0.0, t, kind, service=extra, data=data))
        elif kind == "request":
            events.append(Event(seq, 0.0, t, kind, service="captcha", action="DescribeCaptchaResult", data={}))
        else:
            data = {"link": link, "op": op, **({"rule": extra} if extra else {})}
            events.append(Event(seq, 0.0, t, kind, data=data))
    return Facts(events)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_FAULT, st.sampled_from([0.0, 0.125, 0.25])), max_size=25),
       st.lists(st.tuples(_AT, _LENGTH), min_size=1, max_size=8), st.booleans())
def test_link_fault_during_answers_as_the_walk_did(items, spans, stops):
    facts = _facts(items)
    for start, length in spans:
        assert link_fault_during(facts, start, start + length, stops=stops) == \
            walk_link_fault_during(facts, start, start + length, stops=stops)


_CALL = st.tuples(_AT, st.one_of(st.none(), _LENGTH),
                  st.sampled_from(["code:1", "code:9", "busy", "unavailable", "internal_error"]),
                  st.booleans())


@settings(max_examples=500, deadline=None)
@given(st.lists(_CALL, max_size=12), st.lists(st.tuples(_AT, _LENGTH), min_size=1, max_size=8))
def test_faulted_during_answers_as_the_walk_did(calls, spans):
    v = Verifications.__new__(Verifications)
    v.by_ticket = {}
    for i, (at, took, state, ruled) in enumerate(calls):
        req = Event(2 * i + 1, 0.0, at, "request", "captcha", "DescribeCaptchaResult", {})
        resp = None if took is None else Event(2 * i + 2, 0.0, at + took, "response", "captcha",
                                               "DescribeCaptchaResult", {"rule": "r1" if ruled else None})
        v.by_ticket.setdefault(f"t{i % 3}", []).append((req, resp, state))
    for start, length in spans:
        assert v.faulted_during(start, start + length) == walk_faulted_during(v, start, start + length)


def test_the_walks_here_are_the_ones_the_invariants_replaced():
    # the reference must stay what it was: a fault active over a span, and one outside it
    facts = _facts([(("link", LINK, "down", None), 1.0), (("link", LINK, "up", None), 1.0)])
    assert walk_link_fault_during(facts, 1.5, 1.6) and link_fault_during(facts, 1.5, 1.6)
    assert not walk_link_fault_during(facts, 2.5, 2.6) and not link_fault_during(facts, 2.5, 2.6)
    assert invariants.link_fault_during is link_fault_during  # the one the captcha invariants call


def test_a_fault_that_begins_exactly_at_the_edge_after_a_span_counts():
    # a cut is journaled just after it is made: one EDGE_S after the span still counts, as it did
    facts = _facts([(("link", LINK, "down", None), 1.0 + EDGE_S)])
    assert link_fault_during(facts, 0.5, 1.0) and walk_link_fault_during(facts, 0.5, 1.0)
    assert not link_fault_during(facts, 0.5, 0.99) and not walk_link_fault_during(facts, 0.5, 0.99)


def test_a_fault_that_ends_exactly_as_a_span_begins_counts():
    facts = _facts([(("link", LINK, "down", None), 0.5), (("link", LINK, "up", None), 0.5)])
    assert link_fault_during(facts, 1.0, 1.5) and walk_link_fault_during(facts, 1.0, 1.5)
    assert not link_fault_during(facts, 1.0 + 1e-9, 1.5) and not walk_link_fault_during(facts, 1.0 + 1e-9, 1.5)
