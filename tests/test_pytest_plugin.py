"""The pytest plugin's fixtures, used directly (they are registered for this suite too)."""

from __future__ import annotations

import os
import time

import pytest
import requests

from harness.faults.rules import RuleError
from harness.testing.rules import build_rule
from mocks.solver.config import DEFAULT_KEY


def balance(url: str, **kw) -> requests.Response:
    return requests.get(url + "/res.php", params={"key": DEFAULT_KEY, "action": "getbalance"}, timeout=10, **kw)


def test_build_rule_short_forms_are_one_rule():
    whole = {"match": {"service": "captcha", "action": "A"}, "effect": {"error": "InternalError"},
             "schedule": {"times": 2}}
    assert build_rule(effect={"error": "InternalError"}, action="A", times=2, default_service="captcha") == whole
    assert build_rule(error="InternalError", action="A", times=2, default_service="captcha") == whole
    assert build_rule({"error": "InternalError"}, action="A", times=2, default_service="captcha") == whole
    assert build_rule(whole, default_service="solver") == whole
    link_rule = build_rule(link="integration->captcha", toxic="latency", default_service="captcha")
    assert link_rule["match"] == {"link": "integration->captcha"}


def test_fault_is_applied_only_inside_the_block(solver_mock):
    with solver_mock.fault({"status": 503, "body": "busy"}, action="res.php") as rid:
        r = balance(solver_mock.url)
        assert (r.status_code, r.text) == (503, "busy")
        assert [rule["id"] for rule in solver_mock.rules()] == [rid]
    assert solver_mock.rules() == []
    assert balance(solver_mock.url).status_code == 200
    responses = solver_mock.responses("res.php")
    assert [(e["status"], e["rule"]) for e in responses] == [(503, rid), (200, None)]
    decisions = solver_mock.events("decision")
    assert [(d["rule"], d["fired"]) for d in decisions] == [(rid, True)]


def test_schedule_shortcuts_count_calls(solver_mock):
    solver_mock.add_rule(status=502, action="res.php", after=1, times=2)
    assert [balance(solver_mock.url).status_code for _ in range(5)] == [200, 502, 502, 200, 200]
    assert solver_mock.rules()[0]["fired"] == 2


def test_bad_rule_names_the_field(captcha_mock):
    with pytest.raises(RuleError, match="captcha_code"):
        captcha_mock.add_rule(captcha_code="busy")


def test_issue_ticket_and_config(captcha_mock):
    ticket = captcha_mock.issue_ticket(evil_level=100)
    assert ticket["ticket"].startswith("t03") and ticket["evil_level"] == 100
    assert ticket["appid"] == captcha_mock.app_id
    assert [t["ticket"] for t in captcha_mock.tickets()] == [ticket["ticket"]]
    assert captcha_mock.journal[-1].kind == "captcha.ticket"
    assert captcha_mock.set_config(ticket_lifetime_s=5)["ticket_lifetime_s"] == 5
    assert captcha_mock.config["ticket_lifetime_s"] == 5
    with pytest.raises(ValueError, match="ticket_lifetime_s"):
        captcha_mock.set_config(ticket_lifetime_s=-1)


def test_solver_and_chat_helpers(solver_mock, chat_mock):
    assert solver_mock.api_key == DEFAULT_KEY
    assert DEFAULT_KEY in solver_mock.keys() and solver_mock.tasks() == []
    sig = chat_mock.usersig("alice")
    assert isinstance(sig, str) and len(sig) > 20
    assert chat_mock.sdkappid == chat_mock.config["sdkappid"]
    assert chat_mock.messages() == []


def test_reset_forgets_everything_a_test_did(harness_host, harness, captcha_mock, solver_mock):
    captcha_mock.issue_ticket()
    captcha_mock.set_config(ticket_lifetime_s=7)
    solver_mock.add_rule(status=503, action="res.php")
    solver_mock.stop()
    with pytest.raises(requests.ConnectionError):
        balance(solver_mock.url)
    port = solver_mock.port
    assert harness.journal  # this test's events so far

    since = harness_host.reset()  # what the fixture does before each test
    harness.since = since
    assert captcha_mock.config["ticket_lifetime_s"] == 300
    assert captcha_mock.tickets() == [] and harness.rules() == []
    assert solver_mock.port == port and balance(solver_mock.url).status_code == 200  # listening again
    assert [e.kind for e in harness.journal] == ["request", "response"]  # only what happened since


def test_journal_holds_only_this_test(harness, solver_mock):
    assert harness.journal == [] and solver_mock.journal == []
    balance(solver_mock.url)
    assert [e.kind for e in solver_mock.journal] == ["request", "response"]
    assert all(e.seq > harness.since for e in harness.journal)


def test_rule_windows_count_from_the_test_start(solver_mock):
    solver_mock.add_rule(status=503, action="res.php", window={"start": "0s", "end": "60s"})
    assert balance(solver_mock.url).status_code == 503


def test_wait_for_explains_a_timeout(harness):
    with pytest.raises(AssertionError, match=r"waited 0.1s for 1 event\(s\) kind='callback'.*saw 0"):
        harness.wait_for("callback", timeout=0.1)


def test_wrong_mock_name_is_a_clear_error(harness):
    with pytest.raises(KeyError, match="have: "):
        harness.mock("nope")


def test_link_cut_and_toxic_are_local_to_the_link(harness, solver_mock, link):
    ln = link("integration->solver")
    assert ln.proxy.endswith(".integration-solver") and os.environ.get("PYTEST_XDIST_WORKER", "main") in ln.proxy
    assert balance(ln.url).status_code == 200
    with ln.cut():
        with pytest.raises(requests.ConnectionError):
            balance(ln.url)
        assert balance(solver_mock.url).status_code == 200  # the mock itself is fine
    with ln.toxic("latency", latency=400):
        started = time.monotonic()
        assert balance(ln.url).status_code == 200
        assert time.monotonic() - started >= 0.35
    assert ln.toxics() == {}
    with pytest.raises(ValueError, match="has no attribute"):
        ln.add_toxic("latency", rate=5)
    kinds = [(e.kind, e["op"]) for e in harness.journal if e.kind in ("link", "toxic")]
    assert kinds == [("link", "down"), ("link", "up"), ("toxic", "added"), ("toxic", "removed")]


def test_link_rules_and_reset(harness_host, harness, solver_mock, link):
    ln = link("integration->solver")
    assert link("integration->solver") is ln  # one link per name and worker
    rid = solver_mock.add_rule(link="integration->solver", link_down=True)
    with pytest.raises(requests.ConnectionError):
        balance(ln.url)
    solver_mock.remove_rule(rid)
    assert balance(ln.url).status_code == 200
    solver_mock.add_rule(link="integration->solver", toxic="latency", attributes={"latency": 300})
    ln.add_toxic("bandwidth", rate=1000)
    ln.down()
    assert set(ln.toxics()) == {"rule.r2", "t1.bandwidth"}
    harness_host.reset()  # the next test starts with a clean, open link
    assert ln.toxics() == {}
    started = time.monotonic()
    assert balance(ln.url).status_code == 200 and time.monotonic() - started < 0.3


def test_link_needs_an_upstream_for_non_mocks(link):
    with pytest.raises(ValueError, match="give upstream"):
        link("integration->redis")
    with pytest.raises(ValueError, match="expected <from>-><to>"):
        link("solver")


def test_mitm_link_applies_http_faults(harness, solver_mock, link):
    ln = link("integration->solver", mitm=True)
    assert ln.via_mitm
    harness.add_rule(link="integration->solver", duplicate_request=1, times=1)
    assert balance(ln.url).status_code == 200
    solver_mock.wait_for("request", count=2, action="res.php")  # the proxy sent it twice
    harness.add_rule(link="integration->solver", drop_response=True, times=1)
    with pytest.raises(requests.RequestException):
        balance(ln.url)
    assert len(solver_mock.requests("res.php")) == 3  # the mock handled it; the client never saw it
