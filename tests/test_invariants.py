"""Invariants on hand-built journals: each classification and each failure with its evidence."""

from harness.journal import Event, kinds
from harness.verdict import evaluate


class J:
    """A tiny journal builder. Events go through the journal's declarations (``kinds``), the ones
    producers use: a kind or field renamed there fails here instead of passing unread."""

    def __init__(self):
        self.events = []

    def add(self, kind, t, service=None, action=None, **data):
        where = {k: v for k, v in (("service", service), ("action", action)) if v is not None}
        event = kinds.get(kind).partial(seq=len(self.events) + 1, t=t, **where, **data)
        self.events.append(Event.from_dict(event))
        return self

    def task(self, tid, token, t=0.0, pingback="delivered"):
        self.add("response", t, "solver", "in.php", rid=f"s{tid}", status=200, body=f"OK|{tid}")
        self.add("solution", t + 0.5, "solver", None, task=tid, token=token)
        if pingback:
            self.add("callback", t + 0.6, "solver", "pingback", match={"id": tid}, outcome=pingback)
        return self

    def use(self, token, t):
        return self.add("request", t, "solver", "site.submit", params={"token": token})

    def poll(self, tid, t):
        return self.add("request", t, "solver", "res.php", params={"action": "get", "id": tid})


def verdict(j, *expect):
    return {r.name: r for r in evaluate(list(expect), j.events, now=1000).results}


def test_solution_classes():
    j = J().task("1", "tok1").use("tok1", 1)                       # ok
    j.task("2", "tok2", pingback="dropped").poll("2", 2).use("tok2", 3)  # recovered
    j.task("3", "tok3")                                             # lost
    j.task("4", "tok4").use("tok4", 1).use("tok4", 1.1)             # duplicated
    j.use("forged", 2)                                              # unexpected
    r = verdict(j, {"no_lost_solutions": {"deadline": "30s"}}, {"solutions_used_exactly_once": {}})
    lost, once = r["no_lost_solutions"], r["solutions_used_exactly_once"]
    assert lost.counts == {"ok": 1, "recovered": 1, "lost": 1, "duplicated": 1, "unexpected": 1, "produced": 4}
    assert not lost.ok and [e["task"] for e in lost.evidence] == ["3"]
    assert not once.ok and {e.get("task") for e in once.evidence} == {"4", None}


def test_late_use_counts_as_lost_and_clean_run_passes():
    j = J().task("1", "a").use("a", 40)
    assert not verdict(j, {"no_lost_solutions": {"deadline": "30s"}})["no_lost_solutions"].ok
    j = J().task("1", "a").use("a", 2).task("2", "b").use("b", 3)
    r = verdict(j, {"no_lost_solutions": {}}, {"solutions_used_exactly_once": {}})
    assert all(x.ok for x in r.values())


def test_fallback_polling_and_poll_rate():
    j = J().task("1", "a", pingback="refused").use("a", 5)
    assert not verdict(j, {"fallback_polling_used": {}})["fallback_polling_used"].ok  # used, but never polled?
    j = J().task("1", "a", pingback="refused").poll("1", 3).use("a", 3.1)
    assert verdict(j, {"fallback_polling_used": {}})["fallback_polling_used"].ok
    j = J().task("1", "a")
    assert "not exercised" in verdict(j, {"fallback_polling_used": {}})["fallback_polling_used"].summary
    for i in range(30):
        j.poll("1", 1 + i * 0.01)
    r = verdict(j, {"poll_rate_bounded": {"max_per_task": 10, "max_rate": 20}})["poll_rate_bounded"]
    assert not r.ok and r.counts["peak_rate"] == 30 and r.counts["max_per_task_seen"] == 30


def captcha_call(j, ticket, t, body=None, outcome=None, rule=None):
    rid = f"c{len(j.events)}"
    j.add("request", t, "captcha", "DescribeCaptchaResult", rid=rid, params={"Ticket": ticket})
    j.add("response", t + 0.01, "captcha", "DescribeCaptchaResult", rid=rid, rule=rule,
          status=None if outcome else 200, outcome=outcome, body=body)


def login(j, ticket, t, status, kind="captcha_ticket", latency=10, **extra):
    j.add("driver", t, None, None, flow="login", n=len(j.events), status=status, latency_ms=latency,
          vars={"t": {"ticket": ticket, **extra}}, var_kinds={"t": kind})


def test_fail_open_and_enforced():
    j = J()
    captcha_call(j, "a", 1, {"Response": {"Error": {"Code": "InternalError"}}})
    login(j, "a", 1.1, 200)
    captcha_call(j, "b", 2, {"Response": {"CaptchaCode": 26}})
    login(j, "b", 2.1, 403)                      # blocked on code 26: a bug
    captcha_call(j, "c", 3, outcome="hung")
    login(j, "c", 3.1, 200, latency=9000)        # let in, but far too slowly
    captcha_call(j, "d", 4, {"Response": {"CaptchaCode": 15}})
    login(j, "d", 4.1, 403, kind="bad_ticket")
    captcha_call(j, "e", 5, {"Response": {"CaptchaCode": 1, "EvilLevel": 100}})
    login(j, "e", 5.1, 200)                      # malicious let in: a bug
    login(j, "f", 6, 200)                        # never verified: a bug
    r = verdict(j, {"verification_fail_open": {"max_latency": "3s"}}, {"verification_enforced": {}})
    fo, en = r["verification_fail_open"], r["verification_enforced"]
    assert fo.counts == {"degraded": 3, "blocked": 2}
    assert en.counts == {"checked": 3, "wrong": 2}
    assert {e["why"] for e in en.evidence} == {"bad ticket let through", "let through without verification"}


def test_fail_open_judges_a_login_by_its_last_answer():
    internal_error = {"Response": {"Error": {"Code": "InternalError"}}}
    j = J()
    captcha_call(j, "a", 1, internal_error)
    captcha_call(j, "a", 1.2, {"Response": {"CaptchaCode": 15}})
    login(j, "a", 1.3, 422, kind="bad_ticket")    # a retry, then a definite bad ticket: refused rightly
    captcha_call(j, "b", 2, outcome="reset")
    captcha_call(j, "b", 2.2, {"Response": {"CaptchaCode": 1}})
    login(j, "b", 2.3, 200)                       # a retry, then verified: let in
    captcha_call(j, "c", 3, internal_error)
    captcha_call(j, "c", 3.2, internal_error)
    login(j, "c", 3.3, 422)                       # the last answer a fault, and refused: a blocked user
    r = verdict(j, {"verification_fail_open": {}}, {"verification_enforced": {"denied_status": [422]}})
    fo, en = r["verification_fail_open"], r["verification_enforced"]
    assert fo.counts == {"degraded": 1, "blocked": 1}
    assert [e["verification"] for e in fo.evidence] == [["internal_error", "internal_error"]]
    assert "2 more got a definite answer on a later call" in fo.summary
    assert en.counts == {"checked": 2, "wrong": 0}
    only_retried = J()
    captcha_call(only_retried, "a", 1, internal_error)
    captcha_call(only_retried, "a", 1.2, {"Response": {"CaptchaCode": 15}})
    login(only_retried, "a", 1.3, 422, kind="bad_ticket")
    fo = verdict(only_retried, {"verification_fail_open": {}})["verification_fail_open"]
    assert not fo.exercised
    assert fo.summary.startswith("not exercised: no request met a degraded captcha service; "
                                 "1 more got a definite answer on a later call")


def test_dr_tickets():
    j = J()
    login(j, "terror_1001_1_1", 1, 200, kind="dr_ticket", valid=True)
    login(j, "terror_1001_2_1", 2, 200, kind="dr_ticket", valid=False, why="wrong appid")
    r = verdict(j, {"dr_ticket_accepted": {}}, {"forged_dr_ticket_refused": {}})
    assert r["dr_ticket_accepted"].ok and not r["forged_dr_ticket_refused"].ok


def test_a_forged_dr_ticket_refused_during_an_outage_is_no_blocked_user():
    j = J()
    j.add("link", 1.0, op="down", link="integration->captcha")
    login(j, "a", 1.1, 200)                                   # let in while unreachable: fails open
    login(j, "terror_1001_2_1", 1.2, 403, kind="dr_ticket", valid=False, why="wrong appid")
    login(j, "terror_1001_1_9", 1.3, 200, kind="dr_ticket", valid=True)
    j.add("link", 2.0, op="up", link="integration->captcha")
    r = verdict(j, {"verification_fail_open": {}}, {"forged_dr_ticket_refused": {}})
    assert r["verification_fail_open"].ok and r["verification_fail_open"].counts == {"degraded": 2, "blocked": 0}
    assert r["forged_dr_ticket_refused"].ok


def test_dr_ticket_policy_while_healthy_and_during_an_outage():
    j = J()
    login(j, "terror_1001_1_1", 1, 422, kind="dr_ticket", valid=True)        # API healthy: refused
    j.add("step", 2, "captcha", None, step="service_stopped")
    login(j, "terror_1001_1_3", 3, 201, kind="dr_ticket", valid=True)        # outage: let in
    login(j, "terror_1001_2_3", 3.5, 201, kind="dr_ticket", valid=False, why="wrong appid")  # outage: let in!
    j.add("step", 4, "captcha", None, step="service_started")
    accepted = {"allowed_status": [201], "denied_status": [422]}
    for policy, ok in (("either", True), ("refuse", True), ("accept", False)):
        r = verdict(j, {"dr_ticket_accepted": {**accepted, "while_healthy": policy}})["dr_ticket_accepted"]
        assert r.ok is ok and r.exercised, (policy, r)
        assert r.counts["during_outage"] == 1 and r.counts["judged"] == (1 if policy == "either" else 2)
    r = verdict(j, {"dr_ticket_accepted": {**accepted, "while_healthy": "accept"}})["dr_ticket_accepted"]
    assert [(e["api"], e["why"]) for e in r.evidence] == [
        ("healthy", "refused while the API was healthy (while_healthy: accept)")]
    forged = verdict(j, {"forged_dr_ticket_refused": accepted})["forged_dr_ticket_refused"]
    assert not forged.ok and [(e["api"], e["ticket_is"]) for e in forged.evidence] == [("outage", "wrong appid")]
    assert forged.summary == "0 of 1 forged DR tickets refused (1 during an outage)"
    refused_in_outage = J()
    refused_in_outage.add("step", 0, "captcha", None, step="service_stopped")
    login(refused_in_outage, "terror_1001_1_1", 1, 422, kind="dr_ticket", valid=True)
    r = verdict(refused_in_outage, {"dr_ticket_accepted": {**accepted, "while_healthy": "refuse"}})
    assert not r["dr_ticket_accepted"].ok
    assert r["dr_ticket_accepted"].evidence[0]["why"] == "refused during an outage"


def webhook(j, t, rule=None, status=200, response='{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}',
            latency=5, action="State.StateChange", json=None):
    j.add("callback", t, "chat", action, rule=rule, outcome="delivered" if status else "timeout", status=status,
          response=response, latency_ms=latency, json=json)


def test_a_webhook_sent_while_the_target_was_killed_is_not_judged():
    j = J()
    webhook(j, 1)
    j.add("step", 1.2, step="target_killed")
    webhook(j, 1.5, status=None, response="")      # refused: nobody there to answer
    j.add("step", 1.8, step="target_started")
    webhook(j, 2.5, status=None, response="")      # the target was back: a real miss
    r = verdict(j, {"webhook_acknowledged": {}})["webhook_acknowledged"]
    assert not r.ok and r.counts == {"sent": 2, "bad": 1, "while_target_down": 1}
    assert "1 sent while the target was killed not judged" in r.summary
    assert [e["t"] for e in r.evidence] == [2.5]


def test_a_webhook_a_rule_sent_elsewhere_is_not_judged():
    # `refused` (a port nobody listens on) and `wrong_url` keep the webhook from the integration:
    # nobody there could acknowledge it (explore found it as a false alarm)
    j = J()
    j.add("rule_added", 0, rule="r1", spec={"effect": {"callback": "refused"}})
    j.add("rule_added", 0, rule="r2", spec={"effect": {"callback": "wrong_url", "url": "http://127.0.0.1:9/x"}})
    webhook(j, 1)
    webhook(j, 1.5, rule="r1", status=None, response="")
    webhook(j, 2, rule="r2", status=404, response="not found")
    r = verdict(j, {"webhook_acknowledged": {}})["webhook_acknowledged"]
    assert r.ok and r.counts == {"sent": 1, "bad": 0}
    webhook(j, 3, status=None, response="")        # no rule: the integration did not answer
    assert not verdict(j, {"webhook_acknowledged": {}})["webhook_acknowledged"].ok


def test_back_off_is_judged_only_while_the_process_that_got_the_alarm_runs():
    alarm = {"ServiceName": "openim", "Command": "sendmsg", "Limit": 5, "Request": 5}
    j = J()
    webhook(j, 1, action="Alert.RequestOverLimit", json=alarm)
    j.add("step", 1.3, step="target_killed")       # the restarted process never got the alarm
    j.add("step", 1.5, step="target_started")
    for i in range(20):                            # 20/s after the restart, from 2.1 s
        j.add("request", 2.1 + i * 0.05, "chat", "openim/sendmsg")
    r = verdict(j, {"backs_off_after_overlimit_alarm": {"within": "1s", "observe": "3s"}})
    assert not r["backs_off_after_overlimit_alarm"].exercised
    assert "the target was killed" in r["backs_off_after_overlimit_alarm"].summary
    kept = J()
    webhook(kept, 1, action="Alert.RequestOverLimit", json=alarm)
    for i in range(20):
        kept.add("request", 2.1 + i * 0.05, "chat", "openim/sendmsg")
    assert not verdict(kept, {"backs_off_after_overlimit_alarm": {"within": "1s", "observe": "3s"}}
                       )["backs_off_after_overlimit_alarm"].ok


def test_chat_invariants():
    j = J()
    j.add("rule_added", 0, rule="r1", spec={"effect": {"callback": "bad_sign"}})
    j.add("rule_added", 0, rule="r2", spec={"effect": {"callback": "duplicate"}})
    webhook(j, 1)
    webhook(j, 1.5, rule="r2", latency=2500)                              # late
    webhook(j, 2, rule="r1")                                              # forged but accepted
    webhook(j, 2.5, rule="r1", response='{"ActionStatus":"FAIL","ErrorCode":1}')
    r = verdict(j, {"webhook_acknowledged": {}}, {"forged_webhook_refused": {}})
    assert r["webhook_acknowledged"].counts == {"sent": 2, "bad": 1}
    assert r["forged_webhook_refused"].counts == {"sent": 2, "accepted": 1}
    webhook(j, 10, action="Alert.RequestOverLimit",
            json={"ServiceName": "openim", "Command": "sendmsg", "Limit": 5, "Request": 5})
    for i in range(40):  # 8/s for 5 s after the alarm: no back-off
        j.add("request", 10 + i * 0.125, "chat", "openim/sendmsg")
    r = verdict(j, {"backs_off_after_overlimit_alarm": {"within": "1s", "observe": "3s"}})
    assert not r["backs_off_after_overlimit_alarm"].ok
    assert r["backs_off_after_overlimit_alarm"].counts == {"peak": 8, "limit": 5}


def test_generic_invariants():
    j = J()
    for i, (status, lat) in enumerate([(200, 10), (200, 20), (500, 900), (None, 30)]):
        j.add("driver", i, None, None, flow="f", n=i, status=status, latency_ms=lat)
    r = verdict(j, {"all_requests_succeeded": {}}, {"latency_percentile": {"p": 50, "max": "0.025s"}},
                {"latency_percentile": {"p": 100, "max": "0.5s"}},
                {"journal_count": {"where": {"kind": "driver", "status": 200}, "min": 2, "max": 2}})
    assert r["all_requests_succeeded"].counts == {"sent": 4, "failed": 2}
    assert r["journal_count"].ok
    results = evaluate([{"latency_percentile": {"p": 50, "max": "0.025s"}},
                        {"latency_percentile": {"p": 100, "max": "0.5s"}}], j.events).results
    assert [x.ok for x in results] == [True, False]


def test_link_faults_count_as_degraded():
    j = J()
    j.add("toxic", 1.0, op="added", link="integration->captcha", rule="r1")
    captcha_call(j, "slow", 1.2, {"Response": {"CaptchaCode": 1}})
    login(j, "slow", 4.5, 200, latency=3300)          # started 1.2 s, under the toxic, took 3.3 s
    j.add("toxic", 4.6, op="removed", link="integration->captcha", rule="r1")
    j.add("link", 5.0, op="down", link="integration->captcha")
    login(j, "cut", 5.1, 200, latency=20)              # never reached the mock: the link was down
    j.add("link", 6.0, op="up", link="integration->captcha")
    captcha_call(j, "ok", 7, {"Response": {"CaptchaCode": 1}})
    login(j, "ok", 7.1, 200, latency=20)
    r = verdict(j, {"verification_fail_open": {"max_latency": "2.5s"}}, {"verification_enforced": {}})
    assert r["verification_fail_open"].counts == {"degraded": 2, "blocked": 1}
    assert r["verification_enforced"].counts == {"checked": 1, "wrong": 0}


def test_faulted_site_calls_are_not_uses_and_maybe_received_pingbacks():
    j = J().task("1", "a", pingback="timeout")
    j.add("request", 1, "solver", "site.submit", rid="x1", params={"token": "a"})
    j.add("response", 1.1, "solver", "site.submit", rid="x1", rule="r9", status=503)
    j.use("a", 2)                                 # the retry is the one real use
    j.add("request", 2.5, "solver", "site.submit", rid="x2", params={})  # a body lost at shutdown: no use
    j.use("", 2.6)
    r = verdict(j, {"solutions_used_exactly_once": {}}, {"fallback_polling_used": {}})
    assert r["solutions_used_exactly_once"].ok
    assert r["fallback_polling_used"].ok           # timed-out pingback may have arrived: no poll needed


def test_refused_verifications_say_why_instead_of_only_not_exercised():
    why = {"check": "credential scope service", "expected": "captcha", "got": "127",
           "why": "credential scope service: expected captcha, got 127 — the endpoint's first label"}
    j = J()
    for n, ticket in enumerate(("a", "b")):
        rid = f"c{n}"
        j.add("request", n, "captcha", "DescribeCaptchaResult", rid=rid, params={"Ticket": ticket})
        j.add("response", n + 0.01, "captcha", "DescribeCaptchaResult", rid=rid, rule=None, status=200,
              body={"Response": {"Error": {"Code": "AuthFailure.SignatureFailure"}}}, refused=why)
        login(j, ticket, n + 0.1, 403)
    r = verdict(j, {"verification_enforced": {}}, {"verification_fail_open": {}})
    en = r["verification_enforced"]
    assert not en.exercised and not en.ok
    assert en.summary == ("not exercised: no request was verified by a healthy captcha service: every verification "
                          f"call (2) was refused: AuthFailure.SignatureFailure ×2 ({why['why']})")
    assert [e["rid"] for e in en.evidence] == ["c0", "c1"] and en.evidence[0]["got"] == "127"
    assert "every verification call (2) was refused" in r["verification_fail_open"].summary
    captcha_call(j, "c", 3, {"Response": {"Error": {"Code": "AuthFailure.SecretIdNotFound"}}})
    login(j, "c", 3.1, 403)
    captcha_call(j, "d", 4, {"Response": {"CaptchaCode": 15}})     # one verified, but never sent by the driver
    en = verdict(j, {"verification_enforced": {}})["verification_enforced"]
    assert en.summary.endswith("3 of 4 verification calls were refused: AuthFailure.SignatureFailure ×2 "
                               f"({why['why']}); AuthFailure.SecretIdNotFound")
    assert verdict(J(), {"verification_enforced": {}})["verification_enforced"].summary.startswith(
        "not exercised: no request was verified by a healthy captcha service (the scenario never")
