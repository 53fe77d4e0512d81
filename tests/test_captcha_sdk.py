"""The official tencentcloud-sdk-python-captcha, unmodified, against the captcha mock on a real socket."""

import json
import time

import pytest
import requests
from tencentcloud.captcha.v20190722 import captcha_client, models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from harness.host import HostThread
from harness.journal import read_events
from mocks.captcha.config import (DEFAULT_APP_ID, DEFAULT_APP_SECRET_KEY, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY,
                                  SECOND_APP_ID)


@pytest.fixture()
def ht(tmp_path):
    with HostThread(services={"captcha": {}}, run_dir=str(tmp_path), seed=3, hang_limit_s=5) as ht:
        yield ht


def client(ht, secret_key=DEFAULT_SECRET_KEY, secret_id=DEFAULT_SECRET_ID, timeout=5):
    endpoint = ht.host.urls["captcha"].removeprefix("http://")
    hp = HttpProfile(protocol="http", endpoint=endpoint, reqTimeout=timeout)
    return captcha_client.CaptchaClient(credential.Credential(secret_id, secret_key), "",
                                        ClientProfile(httpProfile=hp))


def issue(ht, **body):
    r = requests.post(ht.host.urls["control"] + "/captcha/tickets", json=body, timeout=5)
    assert r.status_code == 201, r.text
    return r.json()


def add_rule(ht, rule):
    r = requests.post(ht.host.urls["control"] + "/rules", json=rule, timeout=5)
    assert r.status_code == 201, r.text


def describe(c, ticket, randstr, appid=DEFAULT_APP_ID, key=DEFAULT_APP_SECRET_KEY, **more):
    req = models.DescribeCaptchaResultRequest()
    req.from_json_string(json.dumps({"CaptchaType": 9, "Ticket": ticket, "UserIp": "203.0.113.7",
                                     "Randstr": randstr, "CaptchaAppId": appid, "AppSecretKey": key, **more}))
    return c.DescribeCaptchaResult(req)


def code_of(c, t, **kw):
    return describe(c, t["ticket"], t["randstr"], **kw).CaptchaCode


def test_good_ticket_then_reuse(ht):
    c, t = client(ht), issue(ht)
    r = describe(c, t["ticket"], t["randstr"], NeedGetCaptchaTime=1)
    assert (r.CaptchaCode, r.CaptchaMsg, r.EvilLevel) == (1, "OK", 0)
    assert abs(r.GetCaptchaTime - time.time()) < 60 and len(r.RequestId) == 36
    again = describe(c, t["ticket"], t["randstr"])
    assert (again.CaptchaCode, again.CaptchaMsg, again.GetCaptchaTime) == (9, "Sequnce repeat", 0)
    assert again.RequestId != r.RequestId


def test_each_failure_code(ht):
    c = client(ht)
    assert code_of(c, issue(ht, suspicious=True)) == 1
    assert describe(c, **{k: v for k, v in issue(ht, evil_level=100).items() if k in ("ticket", "randstr")}).EvilLevel == 100
    assert code_of(c, issue(ht, age_s=301)) == 8                      # expired (lifetime 300 s)
    assert code_of(c, {"ticket": "t03neverissued", "randstr": "@abc"}) == 15
    assert code_of(c, issue(ht), key="wrong-app-secret") == 100
    assert code_of(c, issue(ht), appid=123) == 100                    # unknown CaptchaAppId
    other = issue(ht, appid=SECOND_APP_ID)
    assert code_of(c, other) == 16                                    # ticket of another app
    t = issue(ht)
    assert describe(c, t["ticket"], "@zzz").CaptchaCode == 7          # randstr mismatch
    assert code_of(c, t) == 1                                         # a failed check did not burn it


def test_disaster_recovery_tickets(ht):
    c, now = client(ht), int(time.time())
    assert describe(c, f"terror_1001_{DEFAULT_APP_ID}_{now}", "@x1").CaptchaCode == 21
    assert describe(c, f"trerror_1006_{DEFAULT_APP_ID}_{now}", "@x1").CaptchaCode == 21
    assert describe(c, f"terror_1001_{DEFAULT_APP_ID}{now}", "@x1").CaptchaCode == 21   # doc bug: no "_"
    assert describe(c, "terror_1001_notanappid_1", "@x1").CaptchaCode == 16
    assert describe(c, "terror_", "@x1").CaptchaCode == 16
    r = describe(c, f"terror_1001_{DEFAULT_APP_ID}_{now}", "@x1")
    assert (r.CaptchaCode, r.CaptchaMsg) == (21, "diff")                                # not single use


def test_injected_protocol_faults(ht):
    c, t = client(ht), issue(ht)
    add_rule(ht, {"match": {"service": "captcha", "action": "DescribeCaptchaResult",
                            "params": {"Ticket": {"regex": "^t03"}}},
                  "effect": {"error": "InternalError"}, "schedule": {"times": 1}})
    with pytest.raises(TencentCloudSDKException) as e:
        describe(c, t["ticket"], t["randstr"])
    assert e.value.get_code() == "InternalError" and "internal error" in e.value.get_message()
    assert len(e.value.get_request_id()) == 36
    add_rule(ht, {"effect": {"error": "RequestLimitExceeded"}, "schedule": {"times": 1}})
    with pytest.raises(TencentCloudSDKException) as e:
        describe(c, t["ticket"], t["randstr"])
    assert e.value.get_code() == "RequestLimitExceeded"
    add_rule(ht, {"effect": {"captcha_code": 26}, "schedule": {"times": 1}})
    r = describe(c, t["ticket"], t["randstr"])
    assert (r.CaptchaCode, r.CaptchaMsg) == (26, "system busy")
    add_rule(ht, {"effect": {"captcha_code": 25}, "schedule": {"times": 1}})
    r = describe(c, t["ticket"], t["randstr"])
    assert (r.CaptchaCode, r.CaptchaMsg) == (25, "bad visitor")
    # the faults did not touch the ticket: it still verifies once
    assert code_of(c, t) == 1
    responses = [e for e in read_events(ht.host.journal.read_since(0)) if e.kind == "response"]
    assert [e["rule"] for e in responses] == ["r1", "r2", "r3", "r4", None]
    assert responses[2]["body"]["retcode"] == 0 and responses[2]["body"]["retmsg"] == "ok"


def test_signature_failures(ht):
    t = issue(ht)
    with pytest.raises(TencentCloudSDKException) as e:
        describe(client(ht, secret_key="not-the-key"), t["ticket"], t["randstr"])
    assert e.value.get_code() == "AuthFailure.SignatureFailure"
    with pytest.raises(TencentCloudSDKException) as e:
        describe(client(ht, secret_id="AKIDunknown"), t["ticket"], t["randstr"])
    assert e.value.get_code() == "AuthFailure.SecretIdNotFound"
    assert code_of(client(ht), t) == 1        # refused calls never reached the ticket


def test_transport_faults_surface_as_sdk_errors(ht):
    c, t = client(ht, timeout=1), issue(ht)
    add_rule(ht, {"effect": {"hang": True}, "schedule": {"times": 1}})
    t0 = time.monotonic()
    with pytest.raises(TencentCloudSDKException) as e:
        describe(c, t["ticket"], t["randstr"])
    assert e.value.get_code() == "ClientNetworkError" and "timed out" in e.value.get_message().lower()
    assert 0.9 < time.monotonic() - t0 < 4
    add_rule(ht, {"effect": {"reset": True}, "schedule": {"times": 1}})
    with pytest.raises(TencentCloudSDKException) as e:
        describe(c, t["ticket"], t["randstr"])
    assert e.value.get_code() == "ClientNetworkError" and "reset" in e.value.get_message().lower()
    add_rule(ht, {"effect": {"status": 502, "body": "<html><body>502 Bad Gateway</body></html>"},
                  "schedule": {"times": 1}})
    with pytest.raises(TencentCloudSDKException) as e:
        describe(c, t["ticket"], t["randstr"])
    assert e.value.get_code() == "ServerNetworkError" and "502 Bad Gateway" in str(e.value.get_message())
    add_rule(ht, {"effect": {"partial_body": 20}, "schedule": {"times": 1}})
    with pytest.raises(TencentCloudSDKException) as e:
        describe(c, t["ticket"], t["randstr"])
    # the SDK reads the body lazily, so a truncated body is not a ClientNetworkError but the
    # exception named after requests' error (DescribeCaptchaResult wraps it as type(e).__name__)
    assert e.value.get_code() == "ChunkedEncodingError"
    # the mock verified the ticket before the body was cut: a retry sees it as reused
    assert code_of(c, t) == 9
    add_rule(ht, {"effect": {"delay_ms": 300}, "schedule": {"times": 1}})
    t0 = time.monotonic()
    assert code_of(c, issue(ht)) == 1
    assert time.monotonic() - t0 >= 0.3
    outcomes = {e["rule"]: (e.get("outcome"), e["status"])
                for e in read_events(ht.host.journal.read_since(0)) if e.kind == "response" and e["rule"]}
    assert outcomes == {"r1": ("hung", None), "r2": ("reset", None), "r3": ("delivered", 502), "r4": ("partial", 200),
                        "r5": ("delivered", 200)}
