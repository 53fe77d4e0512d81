"""Frontend disaster recovery in real headless Chromium: the example login page loads the mock's
TCaptcha.js; when the script loads, a real ticket reaches the backend and verifies as CaptchaCode 1;
when a rule makes it fail (500, hang, garbage), the page builds a terror_1001 ticket and still submits."""

import os
import time

import pytest
import requests

from harness.host import HostThread
from harness.journal import read_events
from mocks.captcha.config import DEFAULT_APP_ID

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} not installed (scripts/system-deps.sh installs Debian chromium)")

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def stack(tmp_path):
    from examples.captcha_frontend.server import LoginBackend
    with HostThread(services={"captcha": {}}, run_dir=str(tmp_path), seed=9, hang_limit_s=10) as ht:
        with LoginBackend(captcha_url=ht.host.urls["captcha"], timeout_s=3) as backend:
            yield ht, backend


def add_rule(ht, rule):
    assert requests.post(ht.host.urls["control"] + "/rules", json=rule, timeout=5).status_code == 201


def login(browser, backend, wait_for_script):
    page = browser.new_page()
    try:
        page.goto(backend.url + "/", wait_until="domcontentloaded")
        if wait_for_script:
            page.wait_for_function(wait_for_script, timeout=10_000)
        page.click("#login")
        page.wait_for_function("window.loginResult !== undefined", timeout=15_000)
        return page.evaluate("window.loginResult")
    finally:
        page.close()


def test_script_loads_real_ticket_verifies(browser, stack):
    ht, backend = stack
    result = login(browser, backend, "typeof window.TencentCaptcha === 'function'")
    assert result == {"ok": True, "decision": "allow", "captcha_code": 1, "error": None}
    (got,) = backend.received
    assert got["ticket"].startswith("t03") and got["randstr"].startswith("@") and got["errorCode"] is None
    events = read_events(ht.host.journal.read_since(0))
    issued = [e for e in events if e.kind == "response" and e.action == "ticket"]
    verified = [e for e in events if e.kind == "request" and e.action == "DescribeCaptchaResult"]
    assert issued[0]["body"]["ticket"] == got["ticket"] == verified[0]["params"]["Ticket"]
    assert [e.action for e in events if e.kind == "request"][:2] == ["TCaptcha.js", "ticket"]


@pytest.mark.parametrize("effect,wait", [
    ({"status": 500, "body": "<html>500 Internal Server Error</html>"}, "window.captchaScriptFailed"),
    ({"body": "<html>not javascript</html>", "content_type": "application/javascript"},
     "performance.getEntriesByType('resource').some(e => e.name.endsWith('/TCaptcha.js'))"),
    ({"hang": True}, None),
], ids=["http500", "garbage", "hang"])
def test_script_fails_terror_ticket_still_submitted(browser, stack, effect, wait):
    ht, backend = stack
    add_rule(ht, {"match": {"service": "captcha", "action": "TCaptcha.js"}, "effect": effect})
    before = int(time.time())
    result = login(browser, backend, wait)   # hang: the script never arrives, click at once
    (got,) = backend.received
    prefix, code, appid, ts = got["ticket"].split("_")
    assert (prefix, code, appid, got["errorCode"]) == ("terror", "1001", str(DEFAULT_APP_ID), 1001)
    assert before - 2 <= int(ts) <= time.time() + 2 and got["randstr"].startswith("@")
    # the backend verified it anyway; the mock answered 21 (a DR ticket) and the backend let the user in
    assert result == {"ok": True, "decision": "allow_dr", "captcha_code": 21, "error": None}
    fired = [e for e in read_events(ht.host.journal.read_since(0)) if e.kind == "decision" and e["fired"]]
    assert [(e.action, e["rule"]) for e in fired] == [("TCaptcha.js", "r1")]


def test_ticket_request_fails_script_builds_its_own_dr_ticket(browser, stack):
    ht, backend = stack
    add_rule(ht, {"match": {"service": "captcha", "action": "ticket"}, "effect": {"error": "InternalError"}})
    result = login(browser, backend, "typeof window.TencentCaptcha === 'function'")
    (got,) = backend.received
    assert got["ticket"].startswith(f"terror_1006_{DEFAULT_APP_ID}_") and got["errorCode"] == 1006
    assert result["decision"] == "allow_dr" and result["captcha_code"] == 21


def test_user_closes_the_captcha_nothing_is_submitted(browser, stack):
    ht, backend = stack
    add_rule(ht, {"match": {"service": "captcha", "action": "ticket"}, "effect": {"body": {"ret": 2}}})
    result = login(browser, backend, "typeof window.TencentCaptcha === 'function'")
    assert result == {"ok": False, "reason": "captcha closed (ret 2)"} and backend.received == []
