"""The invariants for races and pressure on hand-built journals: calls per user action, immediate
retries, and side effects per inbound event however many copies arrived."""

from tests.test_invariants import J, verdict


def action(j, n, start, end, flow="login"):
    """A user action (driver request) in flight from ``start`` to ``end``."""
    return j.add("driver", end, None, None, flow=flow, n=n, status=200, latency_ms=(end - start) * 1000)


def call(j, t, answered, action="DescribeCaptchaResult", rule=None):
    rid = f"r{len(j.events)}"
    j.add("request", t, "captcha", action, rid=rid)
    j.add("response", answered, "captcha", action, rid=rid, rule=rule, status=200)
    return j


CALLS = {"calls_per_action_bounded": {"service": "captcha", "max_calls": 2, "min_backoff": "200ms"}}


def judge(j, spec=CALLS):
    (name, _), = spec.items()
    return verdict(j, spec)[name]


def test_a_retry_after_a_backoff_within_the_bound_passes():
    j = J()
    call(j, 1.00, 1.05)
    call(j, 1.40, 1.45)          # 350 ms after the answer
    action(j, 1, 0.99, 1.5)
    r = judge(j)
    assert r.ok and r.counts["max_calls_seen"] == 2 and r.counts["immediate_retries"] == 0


def test_six_immediate_retries_fail_on_both_counts():
    j = J()
    for i in range(6):
        call(j, 1 + i * 0.06, 1 + i * 0.06 + 0.05)   # each 10 ms after the previous answer
    action(j, 1, 0.99, 1.5)
    r = judge(j)
    assert not r.ok and r.counts["max_calls_seen"] == 6 and r.counts["immediate_retries"] == 5
    (ev,) = r.evidence
    assert ev["calls"] == 6 and max(ev["gaps_after_answer_s"]) < 0.2


def test_calls_are_attributed_to_the_action_in_flight_and_overlaps_are_not_judged():
    j = J()
    call(j, 1.0, 1.01)
    call(j, 1.02, 1.03)          # immediate, but during two actions: ambiguous
    action(j, 1, 0.9, 1.1)
    action(j, 2, 1.015, 1.2)
    call(j, 3.0, 3.01)
    action(j, 3, 2.9, 3.1)
    r = judge(j)
    assert r.ok and r.counts == {"actions": 2, "max_calls_seen": 1, "immediate_retries": 0, "ambiguous": 1,
                                 "held_by_link": 0}


def test_calls_a_link_toxic_held_and_let_go_together_are_not_judged():
    """Found by `harness explore --sweep` on the correct Python backend: a latency toxic on
    integration->captcha held three logins' calls; all arrived when it was removed, inside the one
    login in flight then: "3 calls for one action, 2 immediate retries"."""
    def journal(with_toxic):
        j = J()
        call(j, 1.0, 1.01)
        action(j, 1, 0.9, 1.1)
        if with_toxic:
            j.add("toxic", 1.5, op="added", link="integration->captcha", rule="x1", toxic="latency")
        for _ in range(3):
            call(j, 4.236, 4.236)
        if with_toxic:
            j.add("toxic", 4.238, op="removed", link="integration->captcha", rule="x1")
        call(j, 4.3, 4.31)            # its own call, 62 ms after the toxic went: judged
        action(j, 12, 3.9, 4.4)
        return j
    r = judge(journal(False))
    assert not r.ok and r.counts["max_calls_seen"] == 4 and r.counts["held_by_link"] == 0
    r = judge(journal(True))
    assert r.ok and r.counts["held_by_link"] == 3 and r.counts["max_calls_seen"] == 1, r.summary
    assert "3 calls that arrived while the link to captcha carried a fault not judged" in r.summary
    j = J()  # only held calls: nothing judged, and the reason said
    j.add("toxic", 0.5, op="added", link="integration->captcha", rule="x1", toxic="latency")
    call(j, 1.0, 1.01)
    action(j, 1, 0.9, 1.1)
    assert "arrived while the link carried a fault" in judge(j).summary


def test_no_call_during_any_action_is_not_exercised():
    j = J()
    action(j, 1, 0.0, 0.5)
    call(j, 2.0, 2.1)
    assert "not exercised" in judge(j).summary


PINGBACKS = {"one_effect_per_inbound_event": {
    "inbound": {"kind": "callback", "service": "solver", "action": "pingback"}, "key": "params.id",
    "effect": {"kind": "request", "service": "solver", "action": "site.submit"}, "effect_key": "params.task"}}


def pingback(j, tid, t, copy, outcome="delivered"):
    return j.add("callback", t, "solver", "pingback", params={"id": tid, "code": "tok"}, copy=copy, outcome=outcome)


def use(j, tid, t, rule=None, **answer):
    rid = f"u{len(j.events)}"
    j.add("request", t, "solver", "site.submit", rid=rid, params={"task": tid, "token": "tok"})
    j.add("response", t + 0.01, "solver", "site.submit", rid=rid, rule=rule, status=200, **answer)
    return j


def test_four_concurrent_copies_one_use_passes_and_two_uses_fail():
    j = J()
    for c in range(4):
        pingback(j, "7", 1.0, c)
    use(j, "7", 1.2)
    pingback(j, "8", 2.0, 0)
    use(j, "8", 2.1)
    r = judge(j, PINGBACKS)
    assert r.ok and r.counts == {"events": 2, "repeated": 1, "over": 0, "most_effects": 1}
    use(j, "7", 1.25)
    r = judge(j, PINGBACKS)
    assert not r.ok and [e["key"] for e in r.evidence] == ["7"] and r.evidence[0]["copies"] == 4


def test_dropped_copies_and_faulted_effects_do_not_count():
    j = J()
    pingback(j, "7", 1.0, 0)
    pingback(j, "7", 1.0, 1, outcome="dropped")
    use(j, "7", 1.2)
    assert "not exercised" in judge(j, PINGBACKS).summary
    pingback(j, "7", 1.0, 2)
    use(j, "7", 1.3, rule="site-503")      # the site never took it: a retry is no second effect
    assert judge(j, PINGBACKS).ok
    # nor one the service refused (a rate limit: the answer says so), then retried
    use(j, "7", 1.4, refused={"check": "requests per second", "expected": "at most 10", "got": "more", "why": "…"})
    assert judge(j, PINGBACKS).ok
    use(j, "7", 1.5)                       # a second effect the service took
    assert not judge(j, PINGBACKS).ok


def test_polls_of_a_task_that_never_finished_count_against_the_bound():
    j = J().task("1", "a").use("a", 1)
    j.add("task_accepted", 0.1, "solver", None, task="2", planned="stalled")
    for i in range(12):
        j.poll("2", 1 + i * 0.5)
    r = verdict(j, {"poll_rate_bounded": {"max_per_task": 8}})["poll_rate_bounded"]
    assert not r.ok and r.evidence == [{"task": "2", "polls": 12, "max": 8}]
