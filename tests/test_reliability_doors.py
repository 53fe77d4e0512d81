"""Doors: everything ``harness serve`` opens listens on 127.0.0.1; the control API token
(``--control-token`` / ``HARNESS_CONTROL_TOKEN``) refuses every request without it, also the ones
the proxies make; the mocks' own signature checks (TC3 for captcha, UserSig for chat) cannot be
bypassed with malformed headers, stale or future clocks, or replays.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from typing import Iterator

import psutil
import pytest
import requests

from harness.host import HostThread
from mocks.captcha.config import DEFAULT_APP_SECRET_KEY, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
from mocks.captcha.signature import sign_headers
from mocks.chat.usersig import make_usersig


# --- harness serve: listeners and the control token -----------------------------------------------
def serve(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", "harness", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {})})
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise AssertionError(f"harness serve exited with {proc.returncode}")
    return proc, json.loads(line)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def served_with_proxies(tmp_path) -> Iterator[tuple[subprocess.Popen, dict]]:
    env = {k: v for k, v in os.environ.items() if k != "TOXIPROXY_URL"}  # its own server, as its child
    proc, ready = serve("--proxies", "--control-token", "s3cret", "--journal", str(tmp_path / "j.jsonl"),
                        env=env)
    try:
        yield proc, ready
    finally:
        stop(proc)


def test_every_listener_of_serve_with_proxies_binds_loopback(served_with_proxies):
    proc, ready = served_with_proxies
    procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    names = " ".join(" ".join(p.cmdline()) for p in procs)
    assert "toxiproxy" in names and "mitmdump" in names, names
    listening = [(p.name(), c.laddr.ip, c.laddr.port) for p in procs
                 for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
    assert len(listening) >= 10, listening   # 3 mocks + control + toxiproxy API + 3 links + mitmdump
    assert {ip for _, ip, _ in listening} == {"127.0.0.1"}, listening
    assert "s3cret" not in json.dumps(ready)


def test_control_token_is_required_and_the_proxies_send_it(served_with_proxies):
    _, ready = served_with_proxies
    c = ready["control"]
    refused = [requests.get(c + "/health", timeout=5),
               requests.get(c + "/openapi.json", timeout=5),
               requests.post(c + "/rules", json={"effect": {"reset": True}}, timeout=5),
               requests.post(c + "/rules", data=b"\x1f\x8b garbage", timeout=5,
                             headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}),
               requests.get(c + "/health", headers={"Authorization": "Bearer wrong"}, timeout=5),
               requests.get(c + "/health", headers={"Authorization": "bearer s3cret"}, timeout=5),
               requests.get(c + "/health", headers={"Authorization": "Bearer  s3cret"}, timeout=5),
               requests.get(c + "/health", headers={"Authorization": "Basic czNjcmV0"}, timeout=5),
               requests.get(c + "/health", headers={"Authorization": "Bearer s3cre"}, timeout=5),
               requests.get(c + "/health", headers={"Authorization": "Bearer s3cret\u00e9".encode()}, timeout=5),
               requests.get(c + "/health?token=s3cret", timeout=5),
               requests.get(c + "/health", headers={"X-Harness-Token": ""}, timeout=5)]
    assert [r.status_code for r in refused] == [401] * len(refused)
    assert requests.get(c + "/rules", timeout=5).status_code == 401
    ok = {"Authorization": "Bearer s3cret"}
    assert requests.get(c + "/health", headers=ok, timeout=5).status_code == 200
    assert requests.get(c + "/health", headers={"X-Harness-Token": "s3cret"}, timeout=5).status_code == 200
    # the mitmproxy addon asks the control API for link decisions: with the token, or no fault applies
    rule = {"match": {"link": "integration->captcha"}, "effect": {"status": 503, "body": "<html>busy</html>"}}
    assert requests.post(c + "/rules", json=rule, headers=ok, timeout=5).status_code == 201
    through_link = requests.get(ready["captcha"] + "/TCaptcha.js", timeout=10)
    assert through_link.status_code == 503 and "busy" in through_link.text
    assert requests.get(ready["captcha_direct"] + "/TCaptcha.js", timeout=10).status_code == 200


def test_control_token_from_the_environment(tmp_path):
    proc, ready = serve("--services", "captcha", "--journal", str(tmp_path / "j.jsonl"),
                        env={"HARNESS_CONTROL_TOKEN": "from-env"})
    try:
        c = ready["control"]
        assert requests.get(c + "/health", timeout=5).status_code == 401
        assert requests.get(c + "/health", headers={"Authorization": "Bearer from-env"}, timeout=5).status_code == 200
        assert requests.get(ready["captcha"] + "/TCaptcha.js", timeout=5).status_code == 200  # mocks stay open
    finally:
        stop(proc)
    proc, ready = serve("--services", "captcha", "--journal", str(tmp_path / "k.jsonl"), "--control-token", "cli",
                        env={"HARNESS_CONTROL_TOKEN": "from-env"})
    try:  # the option wins over the environment
        c = ready["control"]
        assert requests.get(c + "/health", headers={"Authorization": "Bearer from-env"}, timeout=5).status_code == 401
        assert requests.get(c + "/health", headers={"Authorization": "Bearer cli"}, timeout=5).status_code == 200
    finally:
        stop(proc)


def test_control_api_off_loopback_without_a_token_refuses_to_start(tmp_path):
    def serve_once(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness", "serve", "--services", "captcha",
                               "--journal", str(tmp_path / "j.jsonl"), *args],
                              capture_output=True, text=True, timeout=30,
                              env={k: v for k, v in os.environ.items() if k != "HARNESS_CONTROL_TOKEN"})
    for host in ("0.0.0.0", "::", ""):
        refused = serve_once("--host", host)
        assert refused.returncode == 2 and refused.stdout == "", refused
        assert refused.stderr.count("\n") == 1 and "--insecure-no-token" in refused.stderr, refused.stderr
    refused = serve_once("--control-host", "0.0.0.0")
    assert refused.returncode == 2 and "control API would be open" in refused.stderr
    with pytest.raises(ValueError, match="open to the network without a token"):
        HostThread(services={"captcha": {}}, host="0.0.0.0", run_dir=str(tmp_path)).start()


def serve_with_stderr(*args: str) -> tuple[subprocess.Popen, dict, str]:
    proc = subprocess.Popen([sys.executable, "-m", "harness", "serve", "--services", "captcha", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if k != "HARNESS_CONTROL_TOKEN"})
    ready = json.loads(proc.stdout.readline())
    return proc, ready, proc.stderr.readline()


def test_insecure_no_token_warns_and_mocks_off_loopback_say_so(tmp_path):
    proc, ready, first = serve_with_stderr("--host", "0.0.0.0", "--insecure-no-token",
                                           "--journal", str(tmp_path / "a.jsonl"))
    try:
        assert "WARNING: the control API on 0.0.0.0 has no token" in first
        assert requests.get(ready["control"].replace("0.0.0.0", "127.0.0.1") + "/health", timeout=5).ok
    finally:
        stop(proc)
    proc, ready, first = serve_with_stderr("--host", "0.0.0.0", "--control-host", "127.0.0.1",
                                           "--journal", str(tmp_path / "b.jsonl"))
    try:  # mocks on the network, the control API on loopback: no token needed
        assert "the mocks listen on 0.0.0.0" in first
        assert ready["control"].startswith("http://127.0.0.1:") and ready["captcha"].startswith("http://0.0.0.0:")
        listening = {(c.laddr.ip, c.laddr.port) for c in psutil.Process(proc.pid).net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN}
        assert ("127.0.0.1", int(ready["control"].rsplit(":", 1)[1])) in listening
        assert ("0.0.0.0", int(ready["captcha"].rsplit(":", 1)[1])) in listening
    finally:
        stop(proc)


def test_journal_append_needs_the_token(served_with_proxies):
    _, ready = served_with_proxies
    c = ready["control"]
    event = {"kind": "response", "service": "captcha", "status": 200}
    assert requests.post(c + "/journal", json=event, timeout=5).status_code == 401
    ok = requests.post(c + "/journal", json=event, headers={"Authorization": "Bearer s3cret"}, timeout=5)
    assert ok.status_code == 201


# --- captcha: TC3 signatures --------------------------------------------------------------------
@pytest.fixture(scope="module")
def captcha(tmp_path_factory) -> Iterator[HostThread]:
    with HostThread(services={"captcha": {}}, run_dir=str(tmp_path_factory.mktemp("captcha"))) as ht:
        yield ht


def issue(ht: HostThread) -> dict:
    return requests.post(ht.host.urls["control"] + "/captcha/tickets", json={}, timeout=5).json()


def signed(ht: HostThread, ticket: dict, *, timestamp: int | None = None, secret_key: str = DEFAULT_SECRET_KEY,
           service: str = "captcha") -> tuple[bytes, dict]:
    body = json.dumps({"CaptchaType": 9, "Ticket": ticket["ticket"], "UserIp": "198.51.100.9",
                       "Randstr": ticket["randstr"], "CaptchaAppId": ticket["appid"],
                       "AppSecretKey": DEFAULT_APP_SECRET_KEY}).encode()
    host = ht.host.urls["captcha"].removeprefix("http://")
    return body, sign_headers(secret_id=DEFAULT_SECRET_ID, secret_key=secret_key, host=host, timestamp=timestamp,
                              action="DescribeCaptchaResult", payload=body, service=service)


def call(ht: HostThread, body: bytes, headers: dict | list) -> dict:
    r = requests.post(ht.host.urls["captcha"] + "/", data=body, headers=headers, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["Response"]


def code_of(resp: dict) -> str | int:
    return resp["Error"]["Code"] if "Error" in resp else resp["CaptchaCode"]


def tampered_variants(body: bytes, h: dict) -> dict[str, tuple[bytes, dict]]:
    auth = h["Authorization"]
    sig = auth.rsplit("Signature=", 1)[1]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    v = {
        "payload changed": (body.replace(b"198.51.100.9", b"198.51.100.8"), h),
        "signature flipped": (body, {**h, "Authorization": auth.replace(sig, flipped)}),
        "signature truncated": (body, {**h, "Authorization": auth.replace(sig, sig[:32])}),
        "signature empty": (body, {**h, "Authorization": auth.replace("Signature=" + sig, "Signature=")}),
        "signature not hex": (body, {**h, "Authorization": auth.replace(sig, "z" * 64)}),
        "timestamp changed": (body, {**h, "X-TC-Timestamp": str(int(h["X-TC-Timestamp"]) + 1)}),
        "timestamp missing": (body, {k: v for k, v in h.items() if k != "X-TC-Timestamp"}),
        "timestamp not a number": (body, {**h, "X-TC-Timestamp": "1e9"}),
        "timestamp huge": (body, {**h, "X-TC-Timestamp": "9" * 40}),
        "authorization missing": (body, {k: v for k, v in h.items() if k != "Authorization"}),
        "other algorithm": (body, {**h, "Authorization": auth.replace("TC3-HMAC-SHA256", "TC3-HMAC-SHA1")}),
        "no SignedHeaders": (body, {**h, "Authorization": auth.replace("SignedHeaders=content-type;host, ", "")}),
        "SignedHeaders without host": (body, {**h, "Authorization": auth.replace("content-type;host", "content-type")}),
        "SignedHeaders extra": (body, {**h, "Authorization": auth.replace("content-type;host", "content-type;host;x-a")}),
        "credential scope other service": (body, {**h, "Authorization": auth.replace("/captcha/", "/cvm/")}),
        "credential scope other date": (body, {**h, "Authorization": auth.replace(
            auth.split("/")[1], "2001-01-01")}),
        "credential unknown SecretId": (body, {**h, "Authorization": auth.replace(DEFAULT_SECRET_ID, "AKIDnobody")}),
        "credential empty SecretId": (body, {**h, "Authorization": auth.replace(DEFAULT_SECRET_ID, "")}),
        "credential extra slashes": (body, {**h, "Authorization": auth.replace("/tc3_request", "/tc3_request/x")}),
        "Host changed": (body, {**h, "Host": "127.0.0.1:1"}),
        "Content-Type changed": (body, {**h, "Content-Type": "application/json; charset=utf-8"}),
        "CRLF in Authorization": (body, {**h, "Authorization": auth + "\r\nX-Evil: 1"}),
        "comma-stuffed Authorization": (body, {**h, "Authorization": auth + ", Signature=" + "0" * 64}),
        "unsigned payload claimed": (body, {**h, "X-TC-Content-SHA256": "UNSIGNED-PAYLOAD"}),
    }
    return v


def test_tampered_tc3_signatures_get_an_auth_error_and_leave_the_ticket(captcha):
    ticket = issue(captcha)
    body, headers = signed(captcha, ticket)
    outcomes = {}
    for name, (b, h) in tampered_variants(body, headers).items():
        try:
            outcomes[name] = code_of(call(captcha, b, h))
        except (requests.exceptions.InvalidHeader, ValueError):
            outcomes[name] = "refused by the client library"  # e.g. CRLF: never leaves this process
    allowed = {"AuthFailure.SignatureFailure", "AuthFailure.InvalidAuthorization", "AuthFailure.SecretIdNotFound",
               "AuthFailure.SignatureExpire", "MissingParameter", "InvalidParameterValue",
               "refused by the client library"}
    assert {n: c for n, c in outcomes.items() if c not in allowed} == {}
    assert code_of(call(captcha, body, headers)) == 1   # none of them consumed the ticket


def test_duplicate_authorization_headers_do_not_smuggle_a_signature(captcha):
    ticket = issue(captcha)
    body, headers = signed(captcha, ticket)
    good = headers["Authorization"]
    bad = good.rsplit("Signature=", 1)[0] + "Signature=" + "0" * 64
    conn = http.client.HTTPConnection(captcha.host.urls["captcha"].removeprefix("http://"), timeout=5)
    try:  # a bad one first and the good one second: the first one is checked (the good one alone passes)
        conn.putrequest("POST", "/", skip_host=True)
        for k, v in [*[(k, v) for k, v in headers.items() if k != "Authorization"],
                     ("Authorization", bad), ("Authorization", good), ("Content-Length", str(len(body)))]:
            conn.putheader(k, v)
        conn.endheaders(body)
        answer = json.loads(conn.getresponse().read())["Response"]
    finally:
        conn.close()
    assert code_of(answer) == "AuthFailure.SignatureFailure"
    assert code_of(call(captcha, body, headers)) == 1


def test_clock_skew_boundaries(captcha):
    requests.put(captcha.host.urls["control"] + "/captcha/config", json={"signature_skew_s": 60}, timeout=5)
    try:
        now = int(time.time())
        for ts, want in [(now - 50, 1), (now + 50, 1), (now - 75, "AuthFailure.SignatureExpire"),
                         (now + 75, "AuthFailure.SignatureExpire"), (0, "AuthFailure.SignatureExpire"),
                         (-86400 * 365, "AuthFailure.SignatureExpire")]:
            ticket = issue(captcha)
            assert code_of(call(captcha, *signed(captcha, ticket, timestamp=ts))) == want, (ts - now, want)
        # a huge skew window (checking disabled in practice) still refuses dates no calendar has
        requests.put(captcha.host.urls["control"] + "/captcha/config", json={"signature_skew_s": 1e15}, timeout=5)
        ticket = issue(captcha)
        body, h = signed(captcha, ticket)
        assert code_of(call(captcha, body, {**h, "X-TC-Timestamp": str(10**13)})) == "InvalidParameterValue"
    finally:
        requests.put(captcha.host.urls["control"] + "/captcha/config", json={"signature_skew_s": 300}, timeout=5)


def test_replayed_signed_request_cannot_verify_twice(captcha):
    ticket = issue(captcha)
    body, headers = signed(captcha, ticket)
    first, again = call(captcha, body, headers), call(captcha, body, headers)
    assert code_of(first) == 1 and code_of(again) == 9          # 9: ticket reused (protocols.md 1.4)
    assert first["RequestId"] != again["RequestId"]


# --- chat: UserSig --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chat(tmp_path_factory) -> Iterator[HostThread]:
    with HostThread(services={"chat": {}}, run_dir=str(tmp_path_factory.mktemp("chat"))) as ht:
        yield ht


def pack(doc: bytes) -> str:
    return base64.b64encode(zlib.compress(doc, 9)).decode().replace("+", "*").replace("/", "-").replace("=", "_")


def unpack(sig: str) -> dict:
    return json.loads(zlib.decompress(base64.b64decode(sig.replace("*", "+").replace("-", "/").replace("_", "="))))


def rest(ht: HostThread, usersig: str, identifier: str = "administrator", sdkappid: str | None = None,
         body: dict | None = None, rnd: int = 1) -> dict:
    cfg = ht.host.services["chat"].config
    params = {"sdkappid": sdkappid or str(cfg.sdkappid), "identifier": identifier, "usersig": usersig,
              "random": str(rnd), "contenttype": "json"}
    r = requests.post(ht.host.urls["chat"] + "/v4/openim/sendmsg", params=params, timeout=5,
                      json=body or {"To_Account": "bob", "MsgRandom": rnd, "SyncOtherMachine": 2,
                                    "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]})
    assert r.status_code == 200, r.text
    return r.json()


def test_tampered_expired_and_malformed_usersigs_are_refused(chat):
    cfg = chat.host.services["chat"].config
    good = make_usersig(cfg.sdkappid, cfg.secret_key, "administrator")
    doc = unpack(good)

    def forged(**change: object) -> str:
        return pack(json.dumps({**doc, **change}).encode())

    sig_flipped = doc["TLS.sig"][:-3] + ("A" if doc["TLS.sig"][-3] != "A" else "B") + doc["TLS.sig"][-2:]
    cases = {
        "signature flipped": (forged(**{"TLS.sig": sig_flipped}), 70009),
        "identifier swapped in the document": (forged(**{"TLS.identifier": "mallory"}), 70013),
        "expire extended in the document": (forged(**{"TLS.expire": doc["TLS.expire"] * 10}), 70009),
        "time moved in the document": (forged(**{"TLS.time": doc["TLS.time"] + 1}), 70009),
        "sdkappid swapped in the document": (forged(**{"TLS.sdkappid": cfg.sdkappid + 1}), 70014),
        "signed with another key": (make_usersig(cfg.sdkappid, "not-the-key", "administrator"), 70009),
        "expired": (make_usersig(cfg.sdkappid, cfg.secret_key, "administrator", expire=10,
                                 now=int(time.time()) - 11), 70001),
        "negative expire": (make_usersig(cfg.sdkappid, cfg.secret_key, "administrator", expire=-1), 70001),
        "for another user": (make_usersig(cfg.sdkappid, cfg.secret_key, "mallory"), 70013),
        "truncated": (good[: len(good) // 2], 70003),
        "not base64": (good[:-4] + "!!!!", 70003),
        "types changed": (forged(**{"TLS.time": str(doc["TLS.time"])}), 70003),
        "signature not a string": (forged(**{"TLS.sig": 12345}), 70003),
        "deeply nested JSON": (pack(b"[" * 5000), 70003),
        "zlib bomb": (pack(b"{" + b" " * 5_000_000 + b"}"), 70003),
    }
    got = {name: rest(chat, sig)["ErrorCode"] for name, (sig, _) in cases.items()}
    assert got == {name: code for name, (_, code) in cases.items()}
    too_long = requests.post(chat.host.urls["chat"] + "/v4/openim/sendmsg", timeout=5, json={},
                             params={"sdkappid": cfg.sdkappid, "identifier": "administrator", "usersig": "A" * 9000})
    assert too_long.status_code == 400                           # the request line limit comes first
    other_app = rest(chat, good, sdkappid=str(cfg.sdkappid + 1))
    assert other_app["ErrorCode"] == 60006                       # SDKAppID not ours
    assert rest(chat, good)["ActionStatus"] == "OK"


def test_replayed_chat_request_is_deduplicated_not_delivered_twice(chat):
    cfg = chat.host.services["chat"].config
    sig = make_usersig(cfg.sdkappid, cfg.secret_key, "administrator")
    before = len(requests.get(chat.host.urls["control"] + "/chat/messages", timeout=5).json()["messages"])
    first, replay = rest(chat, sig, rnd=424242), rest(chat, sig, rnd=424242)
    assert first["ActionStatus"] == replay["ActionStatus"] == "OK"
    assert first["MsgKey"] == replay["MsgKey"]                     # the same message, not a new one
    after = requests.get(chat.host.urls["control"] + "/chat/messages", timeout=5).json()["messages"]
    assert len(after) == before + 1
