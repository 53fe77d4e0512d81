"""Resilience tests of a login endpoint that verifies Tencent Captcha tickets (docs/pytest.md)."""

import os
import time

import requests

VARIANT = os.environ.get("VARIANT")  # which backend variant the scenario runs start (None: correct)


def login(url, ticket):
    return requests.post(url + "/login", json={"ticket": ticket["ticket"], "randstr": ticket["randstr"]}, timeout=10)


def test_solved_captcha_logs_in(backend, captcha_mock):
    assert login(backend, captcha_mock.issue_ticket()).status_code == 200


def test_unknown_ticket_is_refused(backend, captcha_mock):
    assert login(backend, {"ticket": "t03" + "x" * 93, "randstr": "@abc"}).status_code == 403


def test_forged_disaster_recovery_ticket_is_refused(backend, captcha_mock):
    forged = {"ticket": f"terror_1001_999999_{int(time.time())}", "randstr": "@abc"}  # another app's
    assert login(backend, forged).status_code == 403


def test_captcha_outage_lets_users_in(backend, captcha_mock):
    with captcha_mock.fault({"error": "InternalError"}, action="DescribeCaptchaResult") as rule:
        assert login(backend, captcha_mock.issue_ticket()).status_code == 200
    assert [r["rule"] for r in captcha_mock.responses("DescribeCaptchaResult")] == [rule]


def test_unreachable_captcha_api_lets_users_in(backend_behind_link, captcha_mock, link):
    with link("integration->captcha").cut():
        assert login(backend_behind_link, captcha_mock.issue_ticket()).status_code == 200


def test_slow_captcha_api_does_not_hold_users(backend_behind_link, captcha_mock, link):
    with link("integration->captcha").toxic("latency", latency=5000):
        started = time.monotonic()
        assert login(backend_behind_link, captcha_mock.issue_ticket()).status_code == 200
        assert time.monotonic() - started < 3.5  # VERIFY_TIMEOUT is 1 s


def test_busy_captcha_scenario(run_scenario):
    outcome = run_scenario({
        "name": "busy-captcha", "extends": "../../scenarios/_targets/captcha_backend.yaml",
        "traffic": [{"name": "login", "count": 6, "vars": {"t": {"captcha_ticket": {}}},
                     "request": {"method": "POST", "path": "/login",
                                 "json": {"ticket": "${t.ticket}", "randstr": "${t.randstr}"}}}],
        "timeline": [{"at": "0s", "add_rules": [{"match": {"service": "captcha", "action": "DescribeCaptchaResult"},
                                                 "effect": {"captcha_code": 26}, "schedule": {"times": 3}}]}],
        "expect": [{"verification_fail_open": {"flow": "login"}}],
    }, variant=VARIANT)
    assert outcome.ok, outcome.explain()
