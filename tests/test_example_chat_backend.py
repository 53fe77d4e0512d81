"""The reference chat backend (examples/chat_backend) as a real process against the real Chat mock:
webhook authentication, idempotency, before-send moderation, REST sends with a UserSig, back-off
after Alert.RequestOverLimit, and what each bug variant gets wrong."""

import hashlib
import os
import subprocess
import sys
import time

import pytest
import requests

from harness.host import HostThread
from harness.run.processes import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP_PY = os.path.join(ROOT, "examples", "chat_backend", "app.py")
SDKAPPID, TOKEN = 1400000000, "exampleWebhookToken01"
OK = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}

sys.path.insert(0, os.path.join(ROOT, "examples", "chat_backend"))
from chat_rest import Pacer  # noqa: E402


@pytest.fixture()
def chat(tmp_path):
    with HostThread(services={"chat": {"webhook_token": TOKEN}}, run_dir=str(tmp_path), seed=3) as ht:
        yield ht


class Backend:
    def __init__(self, chat_ht, variant, log_path, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = requests.get(chat_ht.host.urls["control"] + "/chat/config", timeout=5).json()
        full = {**os.environ, "PORT": str(self.port), "VARIANT": variant, "CHAT_URL": chat_ht.host.urls["chat"],
                "SDKAPPID": str(cfg["sdkappid"]), "USERSIG_KEY": cfg["secret_key"],
                "ADMIN": cfg["admin_identifier"], "WEBHOOK_TOKEN": TOKEN, "RETRY_BASE_S": "0.2",
                "SLOW_WEBHOOK_S": "0.6", **env}
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, APP_PY], env=full, cwd=ROOT, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert self.proc.poll() is None, open(log_path).read()
            assert time.monotonic() < deadline, "backend did not start"
            time.sleep(0.05)

    def hook(self, command, body, *, sdkappid=SDKAPPID, request_time=None, sign="auto", raw=None):
        t = str(int(time.time()) if request_time is None else request_time)
        params = {"SdkAppid": str(sdkappid), "CallbackCommand": command, "contenttype": "json",
                  "ClientIP": "127.0.0.1", "OptPlatform": "RESTAPI"}
        if sign is not None:
            params["Sign"] = hashlib.sha256(f"{TOKEN}{t}".encode()).hexdigest() if sign == "auto" else sign
            params["RequestTime"] = t
        kw = {"data": raw, "headers": {"Content-Type": "application/json"}} if raw is not None else {
            "json": {"CallbackCommand": command, **body}}
        return requests.post(self.url + "/im/callback", params=params, timeout=10, **kw)

    def get(self, path):
        r = requests.get(self.url + path, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture()
def backend(chat, tmp_path):
    made = []

    def start(variant="correct", **env):
        b = Backend(chat, variant, str(tmp_path / f"backend-{len(made)}.log"), **env)
        made.append(b)
        return b

    yield start
    for b in made:
        b.close()


def wait_for(fn, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def login(user, t_ms):
    return {"EventTime": t_ms, "Info": {"Action": "Login", "To_Account": user, "Reason": "Register"}}


def messages(chat):
    return requests.get(chat.host.urls["control"] + "/chat/messages", timeout=5).json()["messages"]


def test_genuine_callback_acknowledged_forgeries_refused(backend):
    b = backend()
    body = {"From_Account": "a", "To_Account": "b", "MsgKey": "1_2_3", "MsgBody": []}
    r = b.hook("C2C.CallbackAfterSendMsg", body)
    assert r.status_code == 200 and r.json() == OK
    forged = [b.hook("C2C.CallbackAfterSendMsg", {**body, "MsgKey": "f1"}, sdkappid=SDKAPPID + 1),
              b.hook("C2C.CallbackAfterSendMsg", {**body, "MsgKey": "f2"}, sign="0" * 64),
              b.hook("C2C.CallbackAfterSendMsg", {**body, "MsgKey": "f3"}, sign=None),
              b.hook("C2C.CallbackAfterSendMsg", {**body, "MsgKey": "f4"}, request_time=int(time.time()) - 300),
              b.hook("C2C.CallbackAfterSendMsg", {**body, "MsgKey": "f5"}, sign="é" * 64)]
    for f in forged:
        assert f.status_code == 403 and f.json()["ActionStatus"] == "FAIL", f.text
    assert b.get("/archive") == {"count": 1, "keys": ["1_2_3"]}
    assert b.get("/stats")["webhooks"]["refused"] == 5


def test_bad_bodies_get_4xx_not_500(backend):
    b = backend()
    for raw in (b"not json", b"[1,2]", b"\xff\xfe", b""):
        r = b.hook("State.StateChange", {}, raw=raw)
        assert r.status_code == 400 and r.json()["ActionStatus"] == "FAIL"
    r = requests.post(b.url + "/notify", json={"to": "", "text": "x"}, timeout=5)
    assert r.status_code == 400
    r = b.hook("State.StateChange", {"Info": "not an object", "EventTime": "soon"})
    assert r.status_code == 200 and r.json() == OK


def test_duplicate_callback_acts_once_and_repeats_the_answer(backend, chat):
    b = backend()
    ev = login("dupuser", 1_000)
    answers = [b.hook("State.StateChange", ev).json() for _ in range(3)]
    assert answers == [OK, OK, OK]
    assert wait_for(lambda: [m for m in messages(chat) if m["to"] == "dupuser"])
    time.sleep(1.3)  # past Chat's own 1 s MsgRandom dedupe: a second send would be delivered
    b.hook("State.StateChange", ev)
    time.sleep(0.5)
    assert len([m for m in messages(chat) if m["to"] == "dupuser"]) == 1
    assert b.get("/stats")["webhooks"]["duplicates"] == 3


def test_before_send_masks_blocked_words_and_older_state_loses(backend):
    b = backend(BLOCKED_WORDS="spam,scam")
    body = {"From_Account": "a", "To_Account": "b", "MsgBody": [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "no SPAM or scam"}},
        {"MsgType": "TIMFaceElem", "MsgContent": {"Index": 1}}, "junk"]}
    ans = b.hook("C2C.CallbackBeforeSendMsg", body).json()
    assert ans["ErrorCode"] == 0 and ans["MsgBody"][0]["MsgContent"]["Text"] == "no *** or ***"
    assert ans["MsgBody"][1:] == body["MsgBody"][1:]
    clean = b.hook("C2C.CallbackBeforeSendMsg", {**body, "MsgBody": body["MsgBody"][1:]}).json()
    assert clean == OK
    b.hook("State.StateChange", {"EventTime": 2_000, "Info": {"Action": "Logout", "To_Account": "z"}})
    b.hook("State.StateChange", login("z", 1_000))  # older, delivered late
    assert b.get("/presence/z")["online"] is False


def test_notify_sends_through_rest_with_a_usersig(backend, chat):
    b = backend()
    r = requests.post(b.url + "/notify", json={"to": "rita", "text": "hi rita"}, timeout=5)
    assert r.status_code == 202
    got = wait_for(lambda: [m for m in messages(chat) if m["to"] == "rita"])
    assert got and got[0]["body"][0]["MsgContent"]["Text"] == "hi rita"
    assert wait_for(lambda: b.get("/stats")["outbox"]["sent"] == 1)


def test_alarm_puts_a_ceiling_on_that_command(backend):
    b = backend(BACKOFF_HOLD_S="30")
    alarm = {"ServiceName": "openim", "Command": "sendmsg", "Request": 170, "Limit": 200}
    assert b.hook("Alert.RequestOverLimit", alarm).json() == OK
    pacer = b.get("/stats")["outbox"]["pacers"]["openim/sendmsg"]
    assert pacer["qps"] == 100 and pacer["ceiling_qps"] == 100 and pacer["ceiling_for_s"] > 25
    nb = backend("no_backoff")
    assert nb.hook("Alert.RequestOverLimit", alarm).json() == OK
    assert nb.get("/stats")["outbox"]["pacers"] == {}


@pytest.mark.parametrize("variant, accepted", [("no_sdkappid_check", "wrong_sdkappid"), ("no_sign_check", "bad_sign")])
def test_auth_variants_accept_their_forgery(backend, variant, accepted):
    b = backend(variant)
    body = {"From_Account": "a", "MsgKey": "k"}
    wrong_app = b.hook("C2C.CallbackAfterSendMsg", body, sdkappid=SDKAPPID + 1)
    bad_sign = b.hook("C2C.CallbackAfterSendMsg", {**body, "MsgKey": "k2"}, sign="1" * 64)
    got = {"wrong_sdkappid": wrong_app.status_code, "bad_sign": bad_sign.status_code}
    assert got[accepted] == 200
    assert [s for k, s in got.items() if k != accepted] == [403]


def test_slow_webhook_variant_answers_late(backend):
    b = backend("slow_webhook")
    t0 = time.monotonic()
    assert b.hook("State.StateChange", login("s", 1)).json() == OK
    assert time.monotonic() - t0 >= 0.5


def test_pacer_ceiling_soft_rate_and_recovery():
    p = Pacer(50)
    t0 = time.monotonic()
    for _ in range(6):
        p.wait()
    assert time.monotonic() - t0 < 1.0
    p.cap(10, hold_s=0.5)
    assert p.current() == 10
    t0 = time.monotonic()
    for _ in range(4):
        p.wait()
    assert time.monotonic() - t0 >= 0.25  # 10/s: at least three 100 ms gaps
    time.sleep(0.55)
    assert p.current() == 50
    p.slow_down(0.5)
    assert p.current() == 25
    p.succeeded()
    p.succeeded()
    assert p.current() == 50
