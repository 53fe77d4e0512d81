"""Chat webhooks against a real local receiver (http.server): URL params, Sign, bodies, the app's
answer, Alert.RequestOverLimit from real rate-limited REST traffic, before/after-send callbacks,
and callback faults (drop, duplicate, delay, reorder and the forgeries)."""

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from mocks.base.callbacks import closed_port_url
from tests.test_chat_rest import APP, TEXT, chat  # noqa: F401  (fixture)

OK = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}
TOKEN = "xxxxyyyy"
PARAM_ORDER = ["SdkAppid", "CallbackCommand", "contenttype", "ClientIP", "OptPlatform"]


class Receiver:
    """The app's webhook endpoint. ``answer(hook) -> (status, body bytes or obj, delay_s)``."""

    def __init__(self):
        self.hooks = []
        self.cond = threading.Condition()
        self.answer = lambda hook: (200, OK, 0)
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                split = urlsplit(self.path)
                hook = {"path": split.path, "pairs": parse_qsl(split.query, keep_blank_values=True),
                        "content_type": self.headers.get("Content-Type"), "body": json.loads(raw),
                        "at": time.time()}
                hook["params"] = dict(hook["pairs"])
                status, body, delay = outer.answer(hook)
                with outer.cond:
                    outer.hooks.append(hook)
                    outer.cond.notify_all()
                if delay:
                    time.sleep(delay)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the mock gave up (timeout) and closed the connection

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/im/callback"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait(self, n, timeout=5.0):
        with self.cond:
            self.cond.wait_for(lambda: len(self.hooks) >= n, timeout)
            return list(self.hooks)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def app():
    r = Receiver()
    yield r
    r.close()


def app_accepts(hook, token=TOKEN, now=None, max_skew=60):
    """What a careful app checks (protocols.md 3.1/3.2): its own SdkAppid, then Sign and freshness."""
    p = hook["params"]
    if p.get("SdkAppid") != str(APP):
        return "wrong SdkAppid"
    if "Sign" not in p or "RequestTime" not in p:
        return "no Sign"
    if p["Sign"] != hashlib.sha256(f"{token}{p['RequestTime']}".encode()).hexdigest():
        return "bad Sign"
    if abs((now or time.time()) - int(p["RequestTime"])) > max_skew:
        return "stale RequestTime"
    return None


def events_soon(chat, kind, n, timeout=5.0):
    """Journal events of a kind, once there are at least n (the mock journals after the app answered)."""
    deadline = time.monotonic() + timeout
    while True:
        evs = chat.events(kind)
        if len(evs) >= n or time.monotonic() > deadline:
            return evs
        time.sleep(0.02)


def send_hook(chat, body):
    r = requests.post(chat.control + "/chat/webhooks", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_worked_example_sign():
    assert hashlib.sha256(b"xxxxyyyy1669872112").hexdigest() == \
        "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"
    from mocks.chat.webhooks import sign
    assert sign("xxxxyyyy", 1669872112) == "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"


def test_rate_alarm_reaches_the_app_with_exact_params_sign_and_body(chat, app):
    chat.config(webhook_url=app.url, webhook_token=TOKEN, qps_limits={"openim/sendmsg": 5})
    t0 = time.monotonic()
    codes = [chat.send("bob", i)["ErrorCode"] for i in range(10)]
    fast = time.monotonic() - t0 < 0.9
    assert codes[:5] == [0] * 5 and (not fast or codes[5:] == [60007] * 5)
    (hook,) = app.wait(1)
    assert hook["path"] == "/im/callback" and hook["content_type"].startswith("application/json")
    assert [k for k, _ in hook["pairs"]] == PARAM_ORDER + ["Sign", "RequestTime"]
    p = hook["params"]
    assert (p["SdkAppid"], p["CallbackCommand"], p["contenttype"], p["ClientIP"], p["OptPlatform"]) == \
        (str(APP), "Alert.RequestOverLimit", "json", "127.0.0.1", "RESTAPI")
    assert p["Sign"] == hashlib.sha256(f"{TOKEN}{p['RequestTime']}".encode()).hexdigest()
    assert abs(int(p["RequestTime"]) - hook["at"]) <= 2
    assert app_accepts(hook) is None
    # 80 % of 5 is 4: the 5th request in the window crosses it
    assert hook["body"] == {"CallbackCommand": "Alert.RequestOverLimit", "ServiceName": "openim",
                            "Command": "sendmsg", "Request": 5, "Limit": 5}
    time.sleep(0.3)
    assert len(app.hooks) == 1  # debounced (alarm_interval_s = 60)
    chat.config(alarm_interval_s=0)
    for i in range(5):
        chat.send("bob", 100 + i)
    assert len(app.wait(2)) >= 2
    (alarm, *_) = chat.events("rate_alarm")
    assert (alarm["ServiceName"], alarm["Command"], alarm["Request"], alarm["Limit"], alarm["sent"]) == \
        ("openim", "sendmsg", 5, 5, True)
    answers = [e for e in events_soon(chat, "webhook_answer", 2) if e.action == "Alert.RequestOverLimit"]
    assert answers and answers[0]["ok"] is True and answers[0]["ErrorCode"] == 0


def test_alarm_without_token_has_no_sign_and_rules_can_duplicate_it(chat, app):
    chat.config(webhook_url=app.url, qps_limits={"im_open_login_svc/account_import": 2})
    chat.rules({"match": {"service": "chat", "action": "Alert.RequestOverLimit"}, "effect": {"callback": "duplicate"}})
    for i in range(3):
        chat.call("im_open_login_svc/account_import", {"UserID": f"u{i}"})
    hooks = app.wait(2)
    assert len(hooks) == 2 and hooks[0]["pairs"] == hooks[1]["pairs"] and hooks[0]["body"] == hooks[1]["body"]
    assert [k for k, _ in hooks[0]["pairs"]] == PARAM_ORDER
    assert hooks[0]["body"]["ServiceName"] == "im_open_login_svc" and hooks[0]["body"]["Limit"] == 2
    copies = [e["copy"] for e in events_soon(chat, "callback", 2)]
    assert copies == [0, 1]


def test_alarm_aggregation_reports_the_peak(chat, app):
    chat.config(webhook_url=app.url, qps_limits={"openim/sendmsg": 4}, alarm_aggregate_s=0.5)
    t0 = time.monotonic()
    for i in range(8):
        chat.send("bob", i)
    fast = time.monotonic() - t0 < 0.4
    (hook,) = app.wait(1)
    assert hook["body"]["Limit"] == 4 and hook["body"]["Request"] >= 4
    if fast:
        assert hook["body"]["Request"] == 8  # peak of the window, above the limit like the documented example


def test_no_webhook_url_means_alarm_is_only_journaled(chat):
    chat.config(qps_limits={"openim/sendmsg": 1})
    chat.send("bob", 1)
    chat.send("bob", 2)
    time.sleep(0.1)
    (alarm,) = chat.events("rate_alarm")
    assert alarm["sent"] is False and chat.events("callback") == []


def test_on_demand_callbacks_and_the_apps_answer(chat, app):
    r = requests.post(chat.control + "/chat/webhooks", json={"CallbackCommand": "State.StateChange"}, timeout=5)
    assert r.status_code == 409  # no webhook URL yet
    chat.config(webhook_url=app.url, webhook_token=TOKEN)
    res = send_hook(chat, {"CallbackCommand": "State.StateChange",
                           "Info": {"Action": "Logout", "To_Account": "bob", "Reason": "Unregister"},
                           "_params": {"OptPlatform": "IOS"}})
    assert res["answer"]["ok"] is True and res["response"] == OK
    (hook,) = app.wait(1)
    assert hook["params"]["CallbackCommand"] == "State.StateChange" and hook["params"]["OptPlatform"] == "IOS"
    assert hook["body"]["CallbackCommand"] == "State.StateChange"
    assert hook["body"]["Info"] == {"Action": "Logout", "To_Account": "bob", "Reason": "Unregister"}
    assert isinstance(hook["body"]["EventTime"], int) and app_accepts(hook) is None
    for command in ("Alert.RequestOverLimit", "C2C.CallbackBeforeSendMsg", "C2C.CallbackAfterSendMsg",
                    "Group.CallbackAfterSendMsg", "Sns.CallbackFriendAdd"):
        res = send_hook(chat, {"CallbackCommand": command})
        assert res["answer"]["ok"] is True, command
        assert app.hooks[-1]["body"]["CallbackCommand"] == command
    assert send_hook(chat, {"CallbackCommand": "C2C.CallbackBeforeSendMsg"})["verdict"] == "deliver"
    answers = [(e.action, e["ok"]) for e in chat.events("webhook_answer")]
    assert ("State.StateChange", True) in answers and len(answers) == 7


@pytest.mark.parametrize("status,body,delay,failure", [
    (200, {"ActionStatus": "FAIL", "ErrorInfo": "nope", "ErrorCode": 1}, 0, "fail"),
    (500, OK, 0, "http_status"),
    (200, b"<html>OK</html>", 0, "not_json"),
    (200, OK, 1.0, "timeout"),
])
def test_failed_callbacks_are_read_as_failures(chat, app, status, body, delay, failure):
    chat.config(webhook_url=app.url, webhook_timeout_s=0.3)
    app.answer = lambda hook: (status, body, delay)
    res = send_hook(chat, {"CallbackCommand": "C2C.CallbackAfterSendMsg"})
    assert res["answer"]["ok"] is False and res["answer"]["failure"] == failure
    (ev,) = chat.events("webhook_answer")
    assert ev["failure"] == failure and ev.action == "C2C.CallbackAfterSendMsg"


def test_refused_and_bad_control_input(chat):
    chat.config(webhook_url=closed_port_url("/cb"))
    assert send_hook(chat, {"CallbackCommand": "State.StateChange"})["answer"]["failure"] == "refused"
    for bad in (b"nope", b"[1]", b'{"Info": 1}', b'{"CallbackCommand": "no dot"}',
                b'{"CallbackCommand": "State.StateChange", "_params": 5}',
                b'{"CallbackCommand": "State.StateChange", "_what": 5}'):
        r = requests.post(chat.control + "/chat/webhooks", data=bad, timeout=5)
        assert r.status_code == 400 and "error" in r.json(), bad


def test_after_event_retry_on_timeout_is_opt_in(chat, app):
    chat.config(webhook_url=app.url, webhook_timeout_s=0.3)
    app.answer = lambda hook: (200, OK, 0.8)
    send_hook(chat, {"CallbackCommand": "C2C.CallbackAfterSendMsg"})
    assert len(app.hooks) == 1
    chat.config(after_callback_retries_on_timeout=2)
    send_hook(chat, {"CallbackCommand": "C2C.CallbackAfterSendMsg"})
    assert len(app.wait(4)) == 4
    send_hook(chat, {"CallbackCommand": "C2C.CallbackBeforeSendMsg"})  # before-events are never retried
    assert len(app.wait(5)) == 5
    time.sleep(0.2)
    assert len(app.hooks) == 5


def _before_after(chat, app, **cfg):
    chat.config(webhook_url=app.url, webhook_timeout_s=0.4,
                enabled_callbacks=["C2C.CallbackBeforeSendMsg", "C2C.CallbackAfterSendMsg"], **cfg)


def test_before_send_allows_and_modifies_after_send_sees_the_change(chat, app):
    _before_after(chat, app)
    changed = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "*" * 20000}}]  # longer than 2 KB on purpose
    app.answer = lambda hook: (200, {**OK, "MsgBody": changed} if "Before" in hook["params"]["CallbackCommand"]
                               else OK, 0)
    r = chat.send("bob", 31, CloudCustomData="cd")
    assert r["ErrorCode"] == 0
    before, after = app.wait(2)
    assert [k for k, _ in before["pairs"]] == PARAM_ORDER
    b = before["body"]
    assert (b["CallbackCommand"], b["From_Account"], b["To_Account"], b["MsgRandom"], b["MsgBody"], b["MsgKey"]) == \
        ("C2C.CallbackBeforeSendMsg", "administrator", "bob", 31, TEXT, r["MsgKey"])
    assert b["CloudCustomData"] == "cd" and before["params"]["OptPlatform"] == "RESTAPI"
    assert after["body"]["CallbackCommand"] == "C2C.CallbackAfterSendMsg" and after["body"]["MsgBody"] == changed
    (msg,) = chat.delivered()
    assert msg["body"] == changed
    assert [e["verdict"] for e in chat.events("webhook_answer") if "verdict" in e.data] == ["deliver"]


@pytest.mark.parametrize("answer,code,delivered,reason", [
    ({**OK, "ErrorCode": 1}, 20006, False, "app_reject"),
    ({**OK, "ErrorCode": 2}, 0, False, "app_drop"),
    ({**OK, "ErrorCode": 120005, "ErrorInfo": "blocked word"}, 120005, False, "app_custom_error"),
    (b"not json", 0, True, None),
])
def test_before_send_verdicts(chat, app, answer, code, delivered, reason):
    _before_after(chat, app)
    app.answer = lambda hook: (200, answer, 0)
    r = chat.send("bob", 1)
    assert r["ErrorCode"] == code
    if code == 120005:
        assert r["ErrorInfo"] == "blocked word"
    assert len(chat.delivered()) == int(delivered)
    if reason:
        (refused,) = chat.events("message_refused")
        assert refused["reason"] == reason
        time.sleep(0.1)
        assert len(app.hooks) == 1  # no after-send callback for a message that was not delivered
    else:
        assert len(app.wait(2)) == 2


def test_before_send_timeout_delivers_by_default_or_rejects(chat, app):
    _before_after(chat, app)
    app.answer = lambda hook: (200, {**OK, "ErrorCode": 1}, 1.0 if "Before" in hook["params"]["CallbackCommand"] else 0)
    t0 = time.monotonic()
    assert chat.send("bob", 1)["ErrorCode"] == 0  # the app would have said no, but too late
    assert 0.3 < time.monotonic() - t0 < 3
    assert len(chat.delivered()) == 1
    chat.config(before_send_on_failure="reject")
    assert chat.send("bob", 2)["ErrorCode"] == 20006
    assert len(chat.delivered()) == 1


def test_forbid_callback_control_and_group_before_send(chat, app):
    _before_after(chat, app)
    chat.send("bob", 1, ForbidCallbackControl=["ForbidBeforeSendMsgCallback", "ForbidAfterSendMsgCallback"])
    time.sleep(0.1)
    assert app.hooks == [] and len(chat.delivered()) == 1
    chat.config(enabled_callbacks=["Group.CallbackBeforeSendMsg"])
    app.answer = lambda hook: (200, {**OK, "ErrorCode": 1}, 0)
    r = chat.call("group_open_http_svc/send_group_msg", {"GroupId": "@TGS#g", "Random": 3, "MsgBody": TEXT})
    assert r["ErrorCode"] == 10016
    (hook,) = app.wait(1)
    assert hook["body"]["GroupId"] == "@TGS#g" and hook["body"]["Random"] == 3
    assert len(chat.delivered()) == 1


def test_a_retry_during_the_before_callback_is_a_duplicate(chat, app):
    _before_after(chat, app)
    chat.config(enabled_callbacks=["C2C.CallbackBeforeSendMsg"])
    app.answer = lambda hook: (200, OK, 0.3)
    results = []
    t = threading.Thread(target=lambda: results.append(chat.send("bob", 7)))
    t.start()
    time.sleep(0.1)
    again = chat.send("bob", 7)
    t.join(5)
    assert again["MsgKey"] == results[0]["MsgKey"]
    assert len(chat.delivered()) == 1 and len(app.hooks) == 1


FORGERIES = ["wrong_sdkappid", "bad_sign", "missing_sign", "stale_time"]


@pytest.mark.parametrize("kind", FORGERIES)
def test_forged_callbacks_are_caught_by_a_careful_app(chat, app, kind):
    chat.config(webhook_url=app.url, webhook_token=TOKEN)
    chat.rules({"match": {"service": "chat", "action": "State.StateChange"}, "effect": {"callback": kind},
                "schedule": {"times": 1}})
    send_hook(chat, {"CallbackCommand": "State.StateChange"})
    send_hook(chat, {"CallbackCommand": "State.StateChange"})
    forged, genuine = app.wait(2)
    assert app_accepts(genuine) is None
    p = forged["params"]
    expected = {"wrong_sdkappid": "wrong SdkAppid", "bad_sign": "bad Sign", "missing_sign": "no Sign",
                "stale_time": "stale RequestTime"}[kind]
    assert app_accepts(forged) == expected
    if kind == "wrong_sdkappid":
        assert p["SdkAppid"] == str(APP + 1)
    if kind == "stale_time":
        assert 290 <= time.time() - int(p["RequestTime"]) <= 320  # stale_time_s = 300, Sign valid for it
        assert app_accepts(forged, max_skew=400) is None
    assert forged["body"] == {**genuine["body"], "EventTime": forged["body"]["EventTime"]}
    rules = [e["rule"] for e in chat.events("callback")]
    assert rules[0] is not None and rules[1] is None


def test_unknown_forgery_is_journaled_not_sent(chat, app):
    chat.config(webhook_url=app.url)
    chat.rules({"match": {"service": "chat"}, "effect": {"callback": "wrong_id"}})
    res = send_hook(chat, {"CallbackCommand": "State.StateChange"})
    assert res["answer"]["failure"] == "not_sent" and app.hooks == []
    (ev,) = chat.events("callback")
    assert ev["outcome"] == "error" and "wrong_id" in ev["error"]


def test_drop_delay_and_reorder(chat, app):
    chat.config(webhook_url=app.url)
    chat.rules({"match": {"service": "chat", "action": "Group.CallbackAfterSendMsg"}, "effect": {"callback": "drop"}},
               {"match": {"service": "chat", "action": "C2C.CallbackAfterSendMsg"},
                "effect": {"callback": "delay", "delay_ms": 300}},
               {"match": {"service": "chat", "action": "Sns.CallbackFriendAdd"}, "effect": {"callback": "reorder"}})
    res = send_hook(chat, {"CallbackCommand": "Group.CallbackAfterSendMsg"})
    assert res["answer"]["failure"] == "not_sent" and app.hooks == []
    t0 = time.monotonic()
    send_hook(chat, {"CallbackCommand": "C2C.CallbackAfterSendMsg"})
    assert time.monotonic() - t0 >= 0.3 and len(app.hooks) == 1
    held = threading.Thread(target=send_hook, args=(chat, {"CallbackCommand": "Sns.CallbackFriendAdd"}))
    held.start()
    time.sleep(0.3)
    send_hook(chat, {"CallbackCommand": "State.StateChange"})
    held.join(10)
    assert [h["body"]["CallbackCommand"] for h in app.hooks[1:]] == ["State.StateChange", "Sns.CallbackFriendAdd"]
    outcomes = [(e.action, e["outcome"]) for e in chat.events("callback")]
    assert ("Group.CallbackAfterSendMsg", "dropped") in outcomes


def test_no_webhook_task_outlives_a_stopped_mock(tmp_path, caplog):
    """A handler finishing while the mock stops (a sendmsg whose after-send webhook is spawned then)
    must not start a task that writes to the closed journal later."""
    import asyncio
    import gc
    import logging

    from harness.host import MockHost

    async def scenario():
        host = MockHost(services={"chat": {"webhook_url": closed_port_url()}}, run_dir=str(tmp_path), seed=1)
        await host.start()
        chat_mock = host.services["chat"]
        await host.stop()
        chat_mock.spawn_webhook("State.StateChange", {"Info": {"Action": "Login", "To_Account": "x"}})
        await asyncio.sleep(0.3)
        return chat_mock

    with caplog.at_level(logging.ERROR):
        mock = asyncio.run(scenario())
        gc.collect()
    assert not mock._tasks
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
