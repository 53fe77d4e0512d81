"""The official Tencent Cloud SDKs for Python, Node.js, Go and Java, unmodified and pointed at the captcha
mock the documented way (endpoint + protocol only), and a Chat REST call from Node.js with a UserSig made
by the official tls-sig-api-v2 package. Each client runs as a subprocess; they live in
tests/sdk_clients/<lang>/ and `make setup` (target `sdk-clients`) installs what they need.
"""

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from harness.host import HostThread
from harness.journal import read_events
from mocks.captcha.config import DEFAULT_APP_ID, DEFAULT_APP_SECRET_KEY, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
from mocks.captcha.signature import sign_headers
from mocks.chat.config import EXAMPLE_KEY

CLIENTS = Path(__file__).parent / "sdk_clients"
CAPTCHA = {
    "python": ([sys.executable, str(CLIENTS / "python" / "captcha.py")], None),
    "node": (["node", str(CLIENTS / "node" / "captcha.js")], CLIENTS / "node" / "node_modules" / ".installed"),
    "go": ([str(CLIENTS / "go" / "bin" / "captcha-client")], CLIENTS / "go" / "bin" / "captcha-client"),
    "java": (["java", "-cp", f"{CLIENTS / 'java' / 'classes'}:{CLIENTS / 'java' / 'lib'}/*", "VerifyTicket"],
             CLIENTS / "java" / "classes" / "VerifyTicket.class"),
}
# the credential scope service each SDK signs when pointed at 127.0.0.1:PORT, captured at a plain socket
# (docs/captcha.md, "Signature rules"; the Node.js SDK also signs the host without its port)
SIGNS = {"python": "captcha", "node": "127", "go": "captcha", "java": "127"}


def run(command: list[str], needs: Path | None, calls: list[dict], env: dict[str, str] | None = None) -> list[dict]:
    if needs is not None and not needs.exists():
        pytest.fail(f"{needs} is missing: run `make sdk-clients` (part of `make setup`)")
    out = subprocess.run([*command, json.dumps(calls)], capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    answers = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(answers) == len(calls), out.stdout + out.stderr[-2000:]
    return answers


@pytest.fixture()
def ht(tmp_path):
    with HostThread(services={"captcha": {}, "chat": {}}, run_dir=str(tmp_path), seed=5, hang_limit_s=5) as ht:
        yield ht


def issue(ht) -> dict:
    r = requests.post(ht.host.urls["control"] + "/captcha/tickets", json={}, timeout=5)
    assert r.status_code == 201, r.text
    return r.json()


def verify_call(ht, t: dict, secret_key=DEFAULT_SECRET_KEY, secret_id=DEFAULT_SECRET_ID, **params) -> dict:
    body = {"CaptchaType": 9, "Ticket": t["ticket"], "UserIp": "203.0.113.7", "Randstr": t["randstr"],
            "CaptchaAppId": DEFAULT_APP_ID, "AppSecretKey": DEFAULT_APP_SECRET_KEY, **params}
    return {"endpoint": ht.host.urls["captcha"].removeprefix("http://"), "secretId": secret_id,
            "secretKey": secret_key, "action": "DescribeCaptchaResult", "params": body}


def responses(ht, service: str) -> list:
    return [e for e in read_events(ht.host.journal.read_since(0)) if e.kind == "response" and e["service"] == service]


@pytest.mark.parametrize("lang", sorted(CAPTCHA))
def test_official_sdk_verifies_tickets(ht, lang):
    good, other = issue(ht), issue(ht)
    answers = run(*CAPTCHA[lang], [
        verify_call(ht, good, NeedGetCaptchaTime=1),
        verify_call(ht, good),                                            # reused
        verify_call(ht, other, Randstr="@nope"),                          # randstr mismatch
        verify_call(ht, {"ticket": "t03neverissued", "randstr": "@x"}),  # never issued
        verify_call(ht, other, AppSecretKey="wrong-app-secret"),
        verify_call(ht, other, secret_key="not-the-secret-key"),
        verify_call(ht, other, secret_id="AKIDunknown"),
        verify_call(ht, other),                                           # the refusals left it fresh
    ])
    ok = answers[0]
    assert ok["ok"], ok
    assert (ok["response"]["CaptchaCode"], ok["response"]["CaptchaMsg"], ok["response"]["EvilLevel"]) == (1, "OK", 0)
    assert abs(ok["response"]["GetCaptchaTime"] - time.time()) < 60 and len(ok["response"]["RequestId"]) == 36
    assert [a["response"]["CaptchaCode"] for a in answers[1:5]] == [9, 7, 15, 100]
    assert [(a["ok"], a["code"]) for a in answers[5:7]] == [(False, "AuthFailure.SignatureFailure"),
                                                          (False, "AuthFailure.SecretIdNotFound")]
    assert answers[7]["response"]["CaptchaCode"] == 1
    # the journal says why each refusal happened; the wrong key's shows what this SDK signed
    refused = [r.get("refused") for r in responses(ht, "captcha")]
    assert [r and r["check"] for r in refused] == [None, "Ticket", "Randstr", "Ticket", "AppSecretKey", "signature",
                                                   "SecretId", None]
    assert refused[1]["got"] == "verified 1× before" and refused[2]["got"] == "@nope"
    assert refused[4]["got"] == "wrong-app-secret" and refused[4]["expected"].startswith(DEFAULT_APP_SECRET_KEY)
    assert f"/{SIGNS[lang]}/tc3_request\n" in refused[5]["string_to_sign"]
    assert refused[5]["got"] != refused[5]["expected"] and "another SecretKey" in refused[5]["why"]
    assert refused[6]["got"] == "AKIDunknown" and refused[6]["expected"] == DEFAULT_SECRET_ID


@pytest.mark.parametrize("lang", sorted(CAPTCHA))
def test_gateway_rules_only_say_why_an_sdk_is_refused(ht, lang):
    """With signature_sdk_endpoint off the mock applies only the real gateway's rules: the SDKs that sign
    the endpoint's first label as service are refused, and the journal names that label."""
    r = requests.put(ht.host.urls["control"] + "/captcha/config", json={"signature_sdk_endpoint": False}, timeout=5)
    assert r.status_code == 200, r.text
    [answer] = run(*CAPTCHA[lang], [verify_call(ht, issue(ht))])
    service = SIGNS[lang]
    if service == "captcha":
        assert answer["ok"] and answer["response"]["CaptchaCode"] == 1
        return
    assert (answer["ok"], answer["code"]) == (False, "AuthFailure.SignatureFailure")
    [resp] = responses(ht, "captcha")
    why = resp["refused"]
    assert (why["check"], why["expected"], why["got"]) == ("credential scope service", "captcha", service)
    assert "the endpoint's first label" in why["why"]


@pytest.mark.parametrize("lang", sorted(CAPTCHA))
def test_stale_timestamp_is_refused(ht, lang):
    # no clock difference allowed: the SDK's whole-second X-TC-Timestamp is already behind the mock's clock
    requests.put(ht.host.urls["control"] + "/captcha/config", json={"signature_skew_s": 0}, timeout=5)
    [answer] = run(*CAPTCHA[lang], [verify_call(ht, issue(ht))])
    assert (answer["ok"], answer["code"]) == (False, "AuthFailure.SignatureExpire")
    assert responses(ht, "captcha")[-1]["refused"]["check"] == "X-TC-Timestamp"


def test_signed_host_without_port_is_named_under_gateway_rules(ht, caplog):
    """What the Node.js SDK does to the host, alone (its scope service would be refused first)."""
    caplog.set_level(logging.INFO, logger="harness.mocks")
    requests.put(ht.host.urls["control"] + "/captcha/config", json={"signature_sdk_endpoint": False}, timeout=5)
    hostport = ht.host.urls["captcha"].removeprefix("http://")
    t = issue(ht)
    payload = json.dumps(verify_call(ht, t)["params"]).encode()
    headers = sign_headers(secret_id=DEFAULT_SECRET_ID, secret_key=DEFAULT_SECRET_KEY, host="127.0.0.1",
                           action="DescribeCaptchaResult", payload=payload)
    headers["Host"] = hostport
    r = requests.post(ht.host.urls["captcha"] + "/", data=payload, headers=headers, timeout=5)
    assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    why = responses(ht, "captcha")[-1]["refused"]
    assert why["why"].startswith(f"signed host: expected {hostport} (the Host header), got 127.0.0.1")
    assert any(r.name == "harness.mocks" and why["why"] in r.getMessage() for r in caplog.records)  # serve's log line
    requests.put(ht.host.urls["control"] + "/captcha/config", json={"signature_sdk_endpoint": True}, timeout=5)
    r = requests.post(ht.host.urls["captcha"] + "/", data=payload, headers=headers, timeout=5)
    assert r.json()["Response"]["CaptchaCode"] == 1


def test_chat_rest_from_node_with_its_own_usersig(ht):
    needs = CLIENTS / "node" / "node_modules" / ".installed"
    base = {"url": ht.host.urls["chat"], "sdkappid": 1400000000, "key": EXAMPLE_KEY, "identifier": "administrator",
            "command": "im_open_login_svc/account_import", "body": {"UserID": "alice"}}
    answers = run(["node", str(CLIENTS / "node" / "chat.js")], needs, [
        base,
        {**base, "key": "another-key"},
        {**base, "expire": 0},
        {**base, "identifier": "alice"},
    ])
    assert (answers[0]["ActionStatus"], answers[0]["ErrorCode"]) == ("OK", 0)
    assert [a["ErrorCode"] for a in answers[1:]] == [70009, 70001, 60010]
    refused = [r["refused"] for r in responses(ht, "chat") if r.get("refused")]
    assert [r["check"] for r in refused] == ["UserSig TLS.sig", "UserSig lifetime", "identifier"]
    assert "TLS.identifier:administrator\nTLS.sdkappid:1400000000\n" in refused[0]["signed_content"]
    assert refused[2]["got"] == "alice" and "administrator" in refused[2]["expected"]


def test_java_sdk_trusts_the_mock_over_tls_through_the_env_a_target_gets(tmp_path):
    """A TLS run hands a JVM target a trust store (JAVA_TOOL_OPTIONS: the JDK's roots plus the local
    CA): the unmodified Java SDK verifies over https; without it, Java refuses the certificate."""
    from mocks.base.tls import client_env
    command, needs = CAPTCHA["java"]
    with HostThread(services={"captcha": {}}, run_dir=str(tmp_path), tls=["captcha"]) as ht:
        assert ht.host.urls["captcha"].startswith("https://")
        call = verify_call(ht, issue(ht))
        call.update(endpoint=ht.host.urls["captcha"].removeprefix("https://"), protocol="https://")
        env = client_env(ht.host.tls.ca_path)
        assert "javax.net.ssl.trustStore=" in env["JAVA_TOOL_OPTIONS"]
        (refused,) = run(command, needs, [call])  # the JDK's roots alone: the handshake fails
        assert not refused["ok"] and responses(ht, "captcha") == []
        (answer,) = run(command, needs, [call], env={**os.environ, **env})
        assert answer["ok"] and answer["response"]["CaptchaCode"] == 1, answer
