"""Captcha mock wire protocol with raw HTTP: signature rules, error shapes, config, control and loader routes."""

import json
import re
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tencentcloud.captcha.v20190722 import captcha_client, models
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from harness.host import HostThread
from harness.journal import read_events
from mocks.captcha.config import (DEFAULT_APP_ID, DEFAULT_APP_SECRET_KEY, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY,
                                  SECOND_APP_ID, SECOND_APP_SECRET_KEY)
from mocks.captcha.signature import sign_headers

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def ht(tmp_path_factory):
    with HostThread(services={"captcha": {}}, run_dir=str(tmp_path_factory.mktemp("captcha")), seed=5,
                    hang_limit_s=5) as ht:
        yield ht


@pytest.fixture(autouse=True)
def _clean(ht):
    requests.post(ht.host.urls["control"] + "/reset", timeout=5)


def issue(ht, **body):
    r = requests.post(ht.host.urls["control"] + "/captcha/tickets", json=body, timeout=5)
    assert r.status_code == 201, r.text
    return r.json()


def config(ht, **patch):
    r = requests.put(ht.host.urls["control"] + "/captcha/config", json=patch, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def params(t, **more):
    return {"CaptchaType": 9, "Ticket": t["ticket"], "UserIp": "198.51.100.4", "Randstr": t["randstr"],
            "CaptchaAppId": t["appid"], "AppSecretKey": DEFAULT_APP_SECRET_KEY, **more}


def api(ht, body, action="DescribeCaptchaResult", *, raw=None, method="POST", secret_key=DEFAULT_SECRET_KEY,
        timestamp=None, content_type="application/json", extra_signed=None, override=None, sign_host=None):
    """A hand-signed API 3.0 request (what a non-Python integration sends)."""
    url = ht.host.urls["captcha"]
    host = sign_host or url.removeprefix("http://")
    payload = raw if raw is not None else json.dumps(body).encode()
    headers = sign_headers(secret_id=DEFAULT_SECRET_ID, secret_key=secret_key, host=host, action=action,
                           payload=payload, timestamp=timestamp, content_type=content_type,
                           extra_signed=extra_signed)
    headers["Host"] = url.removeprefix("http://")                 # what is actually sent
    headers.update(override or {})
    headers = {k: v for k, v in headers.items() if v is not None}
    r = requests.request(method, url + "/", data=payload, headers=headers, timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"          # exactly, or the SDK ignores errors
    resp = r.json()["Response"]
    assert UUID.match(resp["RequestId"]), resp
    return resp


def error_code(resp):
    return resp.get("Error", {}).get("Code")


# --- signature --------------------------------------------------------------------------------
def test_signature_is_recomputed_from_what_was_received(ht):
    t = issue(ht)
    # extra signed headers and a charset in Content-Type are signed as sent (the C# sample does this)
    resp = api(ht, params(t), content_type="application/json; charset=utf-8",
               extra_signed={"X-TC-Action": "DescribeCaptchaResult"})
    assert resp["CaptchaCode"] == 1
    assert error_code(api(ht, params(issue(ht)), secret_key="wrong")) == "AuthFailure.SignatureFailure"
    # signed for another Host (e.g. the real endpoint) is refused; without the port (what the Node.js SDK
    # signs) is accepted unless signature_sdk_endpoint is off (tests/test_captcha_signature_rules.py)
    assert error_code(api(ht, params(issue(ht)), sign_host="captcha.tencentcloudapi.com")) == \
        "AuthFailure.SignatureFailure"
    assert api(ht, params(issue(ht)), sign_host="127.0.0.1")["CaptchaCode"] == 1
    # body changed after signing
    t2 = issue(ht)
    signed = json.dumps(params(t2)).encode()
    tampered = json.dumps(params(t2, UserIp="10.0.0.1")).encode()
    hdrs = sign_headers(secret_id=DEFAULT_SECRET_ID, secret_key=DEFAULT_SECRET_KEY,
                        host=ht.host.urls["captcha"].removeprefix("http://"), action="DescribeCaptchaResult",
                        payload=signed)
    r = requests.post(ht.host.urls["captcha"] + "/", data=tampered, headers=hdrs, timeout=5)
    assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert api(ht, params(t2))["CaptchaCode"] == 1                  # the refused call left the ticket alone


def test_signature_header_errors_and_clock_skew(ht):
    t = issue(ht)
    assert error_code(api(ht, params(t), override={"Authorization": None})) == "AuthFailure.InvalidAuthorization"
    assert error_code(api(ht, params(t), override={"Authorization": "Bearer x"})) == "AuthFailure.InvalidAuthorization"
    no_host = ("TC3-HMAC-SHA256 Credential=%s/2024-01-01/captcha/tc3_request, SignedHeaders=content-type, "
               "Signature=%s" % (DEFAULT_SECRET_ID, "0" * 64))
    assert error_code(api(ht, params(t), override={"Authorization": no_host})) == "AuthFailure.InvalidAuthorization"
    stale = int(time.time()) - 400
    resp = api(ht, params(t), timestamp=stale)
    assert error_code(resp) == "AuthFailure.SignatureExpire"
    assert error_code(api(ht, params(t), timestamp=int(time.time()) + 400)) == "AuthFailure.SignatureExpire"
    assert error_code(api(ht, params(t), override={"X-TC-Timestamp": None})) == "MissingParameter"
    config(ht, signature_skew_s=1000)
    assert api(ht, params(t), timestamp=stale)["CaptchaCode"] == 1


def sdk(ht, **profile):
    hp = HttpProfile(protocol="http", endpoint=ht.host.urls["captcha"].removeprefix("http://"), reqTimeout=5,
                     reqMethod=profile.pop("reqMethod", "POST"))
    cp = ClientProfile(httpProfile=hp)
    for k, v in profile.items():
        setattr(cp, k, v)
    return captcha_client.CaptchaClient(credential.Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY), "", cp)


def test_sdk_get_requests_and_unsigned_payload(ht):
    for c in (sdk(ht, reqMethod="GET"), sdk(ht, unsignedPayload=True)):
        t = issue(ht)
        req = models.DescribeCaptchaResultRequest()
        req.from_json_string(json.dumps(params(t)))
        assert c.DescribeCaptchaResult(req).CaptchaCode == 1
    get_reqs = [e for e in read_events(ht.host.journal.read_since(0)) if e.kind == "request"
                and e["method"] == "GET" and e.action == "DescribeCaptchaResult"]
    assert get_reqs and get_reqs[-1]["params"]["Ticket"].startswith("t03")


# --- request errors: always 200 + the real error shape, never a 500 ---------------------------
def test_action_version_method_and_body_errors(ht):
    t = issue(ht)
    assert error_code(api(ht, params(t), override={"X-TC-Action": None})) == "InvalidAction"
    assert error_code(api(ht, params(t), action="DescribeNothing")) == "InvalidAction"
    assert error_code(api(ht, params(t), override={"X-TC-Version": None})) == "MissingParameter"
    assert error_code(api(ht, params(t), override={"X-TC-Version": "2017-03-12"})) == "NoSuchVersion"
    assert error_code(api(ht, params(t), method="PUT")) == "UnsupportedProtocol"
    assert error_code(api(ht, None, raw=b'{"CaptchaType": 9, "Ticket": ')) == "InvalidParameter"
    assert error_code(api(ht, None, raw=b"[1, 2]")) == "InvalidParameter"
    missing = params(t)
    del missing["Ticket"]
    resp = api(ht, missing)
    assert (error_code(resp), "`Ticket`" in resp["Error"]["Message"]) == ("MissingParameter", True)
    assert error_code(api(ht, params(t, CaptchaType=8))) == "InvalidParameterValue"
    assert error_code(api(ht, params(t, CaptchaAppId="abc"))) == "InvalidParameterValue"
    assert error_code(api(ht, params(t, Ticket={"x": 1}))) == "InvalidParameterValue"
    assert api(ht, params(t, CaptchaAppId=str(DEFAULT_APP_ID)))["CaptchaCode"] == 1   # numeric text is fine
    assert requests.get(ht.host.urls["captcha"] + "/nope", timeout=5).status_code == 404
    acts = [e.action for e in read_events(ht.host.journal.read_since(0)) if e.kind == "request"]
    assert "(none)" in acts and "DescribeNothing" in acts and "not_found" in acts


def test_refusals_journal_the_field_expected_and_got(ht):
    before = len(list(read_events(ht.host.journal.read_since(0))))
    t = issue(ht)
    assert error_code(api(ht, {k: v for k, v in params(t).items() if k != "UserIp"})) == "MissingParameter"
    assert error_code(api(ht, params(t, CaptchaAppId="one"))) == "InvalidParameterValue"
    assert error_code(api(ht, params(t, CaptchaType=3))) == "InvalidParameterValue"
    assert error_code(api(ht, params(t), override={"X-TC-Version": "2017-03-12"})) == "NoSuchVersion"
    assert error_code(api(ht, params(t), timestamp=int(time.time()) - 1000)) == "AuthFailure.SignatureExpire"
    assert api(ht, params(t, CaptchaAppId=123))["CaptchaCode"] == 100
    assert api(ht, params(issue(ht, age_s=400)))["CaptchaCode"] == 8
    assert api(ht, params(t))["CaptchaCode"] == 1
    got = [(e["refused"]["check"], e["refused"]["expected"], e["refused"]["got"]) if e.get("refused") else None
           for e in list(read_events(ht.host.journal.read_since(0)))[before:] if e.kind == "response"]
    assert got[:5] == [("UserIp", "present (required by DescribeCaptchaResult)", "missing"),
                       ("CaptchaAppId", "an integer", "one"), ("CaptchaType", "9", "3"),
                       ("X-TC-Version", "2019-07-22", "2017-03-12"),
                       ("X-TC-Timestamp", got[4][1], got[4][2])]
    assert got[4][1].startswith("within 300 s of ")
    assert got[5][:2] == ("CaptchaAppId", f"{DEFAULT_APP_ID} or {SECOND_APP_ID}")
    assert got[6] == ("ticket age", "at most ticket_lifetime_s (300 s)", "400 s") and got[7] is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       body=st.binary(max_size=200) | st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(
           st.sampled_from(["CaptchaType", "Ticket", "Randstr", "CaptchaAppId", "AppSecretKey", "UserIp", "x"]),
           st.none() | st.integers() | st.text(max_size=8) | st.lists(st.integers(), max_size=2))),
       action=st.sampled_from(["DescribeCaptchaResult", "DescribeCaptchaMiniResult", "", "Bad"]),
       auth=st.sampled_from(["sign", "none", "junk"]))
def test_fuzzed_requests_get_real_error_shapes(ht, method, body, action, auth):
    url = ht.host.urls["captcha"]
    headers = sign_headers(secret_id=DEFAULT_SECRET_ID, secret_key=DEFAULT_SECRET_KEY,
                           host=url.removeprefix("http://"), action=action, payload=body)
    if auth == "none":
        del headers["Authorization"]
    elif auth == "junk":
        headers["Authorization"] = "TC3-HMAC-SHA256 Credential=/, SignedHeaders=;, Signature=zz"
    r = requests.request(method, url + "/", data=body, headers=headers, timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    resp = r.json()["Response"]
    assert UUID.match(resp["RequestId"]) and ("Error" in resp or "CaptchaCode" in resp)


# --- config, lifecycle options, mini API, rate limit ------------------------------------------
def test_config_defaults_and_lifecycle_options(ht):
    c = ht.host.urls["control"]
    cfg = requests.get(c + "/captcha/config", timeout=5).json()
    assert cfg["secret_keys"] == {DEFAULT_SECRET_ID: DEFAULT_SECRET_KEY}
    assert cfg["apps"] == {str(DEFAULT_APP_ID): DEFAULT_APP_SECRET_KEY, str(SECOND_APP_ID): SECOND_APP_SECRET_KEY}
    assert (cfg["ticket_lifetime_s"], cfg["signature_skew_s"], cfg["reuse_code"]) == (300, 300, 9)
    assert requests.put(c + "/captcha/config", json={"reuse_code": 5}, timeout=5).status_code == 400
    config(ht, reuse_code=104, consume_on_failure=True, ticket_lifetime_s=0.2)
    t = issue(ht)
    assert api(ht, params(t))["CaptchaCode"] == 1
    resp = api(ht, params(t))
    assert (resp["CaptchaCode"], resp["CaptchaMsg"]) == (104, "Ticket Reuse")
    t = issue(ht)
    assert api(ht, params(t, Randstr="@bad"))["CaptchaCode"] == 7
    assert api(ht, params(t))["CaptchaCode"] == 104                  # the failed check burned it
    t = issue(ht)
    time.sleep(0.3)
    assert api(ht, params(t))["CaptchaCode"] == 8
    config(ht, apps={"555": "k5"}, secret_keys={"AKIDother": "sk"})
    assert api(ht, params(issue(ht)))["Error"]["Code"] == "AuthFailure.SecretIdNotFound"
    requests.post(c + "/reset", timeout=5)
    assert requests.get(c + "/captcha/config", timeout=5).json() == cfg
    states = {x["state"] for x in requests.get(c + "/captcha/tickets", timeout=5).json()["tickets"]}
    assert states == set()                                          # reset forgot the tickets


def test_dr_policy_is_configurable(ht):
    now = int(time.time())
    dr = {"ticket": f"trerror_1001_{DEFAULT_APP_ID}_{now - 1000}", "randstr": "@q", "appid": DEFAULT_APP_ID}
    assert api(ht, params(dr))["CaptchaCode"] == 21
    other = {**dr, "ticket": f"terror_1001_{SECOND_APP_ID}_{now}"}
    assert api(ht, params(other))["CaptchaCode"] == 16
    config(ht, dr_max_age_s=600, dr_single_use=True, dr_code=22, dr_appid_mismatch_code=21)
    assert api(ht, params(dr))["CaptchaCode"] == 8
    fresh = {**dr, "ticket": f"terror_1001_{DEFAULT_APP_ID}_{now}"}
    assert [api(ht, params(fresh))["CaptchaCode"] for _ in range(2)] == [22, 9]
    assert api(ht, params(other))["CaptchaCode"] == 21
    config(ht, dr_prefixes=["terror_"])
    assert api(ht, params(dr))["CaptchaCode"] == 15                  # not DR any more: unknown ticket


def test_mini_result_and_rate_limit(ht):
    t = issue(ht)
    mini = params(t)
    del mini["Randstr"]
    resp = api(ht, mini, action="DescribeCaptchaMiniResult")
    assert resp["CaptchaCode"] == 1 and set(resp) == {"CaptchaCode", "CaptchaMsg", "RequestId"}
    other = issue(ht, appid=SECOND_APP_ID)
    assert api(ht, {**mini, "Ticket": other["ticket"]}, action="DescribeCaptchaMiniResult")["CaptchaCode"] == 7
    config(ht, rate_limit_qps=3)
    codes = [error_code(api(ht, params(issue(ht)))) for _ in range(5)]
    assert codes[:3] == [None] * 3 and "RequestLimitExceeded" in codes[3:]


def test_rules_match_on_params_and_unknown_error_names(ht):
    c = ht.host.urls["control"]
    requests.post(c + "/rules", json={"match": {"service": "captcha", "params": {"CaptchaAppId": SECOND_APP_ID}},
                                      "effect": {"error": "UnauthorizedOperation.Unauthorized"}}, timeout=5)
    requests.post(c + "/rules", json={"match": {"params": {"Ticket": {"glob": "t03*"}}, "action": "DescribeCaptchaMiniResult"},
                                      "effect": {"captcha_code": 26}}, timeout=5)
    second = issue(ht, appid=SECOND_APP_ID)
    resp = api(ht, params(second, AppSecretKey=SECOND_APP_SECRET_KEY))
    assert error_code(resp) == "UnauthorizedOperation.Unauthorized" and "arrears" in resp["Error"]["Message"]
    assert api(ht, params(issue(ht)))["CaptchaCode"] == 1
    r = requests.post(ht.host.urls["captcha"] + "/", data=json.dumps(params(issue(ht))).encode(),
                      headers=sign_headers(secret_id=DEFAULT_SECRET_ID, secret_key=DEFAULT_SECRET_KEY,
                                           host=ht.host.urls["captcha"].removeprefix("http://"),
                                           action="DescribeCaptchaMiniResult",
                                           payload=json.dumps(params(issue(ht))).encode()), timeout=5)
    body = r.json()
    assert body["Response"]["CaptchaCode"] == 26 and (body["retcode"], body["retmsg"]) == (0, "ok")
    requests.post(c + "/rules", json={"effect": {"error": "Whatever.Name", "message": "custom text"}}, timeout=5)
    resp = api(ht, params(issue(ht), AppSecretKey=SECOND_APP_SECRET_KEY, CaptchaAppId=DEFAULT_APP_ID))
    assert resp["Error"] == {"Code": "Whatever.Name", "Message": "custom text"}


# --- control routes ---------------------------------------------------------------------------
def test_ticket_control_routes(ht):
    c = ht.host.urls["control"]
    for bad in (b"{nope", b"[]", b'{"evil_level": 101}', b'{"colour": "red"}', b'{"appid": "x"}'):
        r = requests.post(c + "/captcha/tickets", data=bad, timeout=5)
        assert r.status_code == 400 and "error" in r.json(), bad
    t = requests.post(c + "/captcha/tickets", timeout=5).json()       # no body at all
    assert t["appid"] == DEFAULT_APP_ID and t["randstr"].startswith("@") and t["ticket"].startswith("t03")
    issue(ht, appid=SECOND_APP_ID, suspicious=True, user_ip="192.0.2.1")
    api(ht, params(t))
    listed = requests.get(c + "/captcha/tickets", timeout=5).json()
    assert listed["count"] == 2
    assert [(x["state"], x["evil_level"]) for x in listed["tickets"]] == [("used", 0), ("fresh", 100)]
    assert requests.get(c + "/captcha/tickets?limit=x", timeout=5).status_code == 400
    evs = [e for e in read_events(ht.host.journal.read_since(0)) if e.kind == "captcha.ticket"]
    assert evs[-1]["appid"] == SECOND_APP_ID and evs[-1]["evil_level"] == 100
    doc = requests.get(c + "/openapi.json", timeout=5).json()
    assert set(doc["paths"]["/captcha/tickets"]) == {"get", "post"}


# --- the TCaptcha.js stand-in ------------------------------------------------------------------
def test_loader_script_and_ticket_route(ht):
    url = ht.host.urls["captcha"]
    js = requests.get(url + "/TCaptcha.js", timeout=5)
    assert js.status_code == 200 and js.headers["Content-Type"] == "application/javascript"
    assert "TencentCaptcha" in js.text and json.dumps(url) in js.text
    r = requests.get(url + "/ticket", params={"aid": DEFAULT_APP_ID}, timeout=5)
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    got = r.json()
    assert got["ret"] == 0 and api(ht, params({**got, "appid": DEFAULT_APP_ID}))["CaptchaCode"] == 1
    assert requests.options(url + "/ticket", timeout=5).status_code == 204
    assert requests.get(url + "/ticket", params={"aid": "x"}, timeout=5).json()["ret"] == 1
    c = ht.host.urls["control"]
    requests.post(c + "/rules", json=[{"match": {"service": "captcha", "action": "TCaptcha.js"}, "effect": {"status": 500}},
                                      {"match": {"action": "ticket"}, "effect": {"error": "InternalError"}}], timeout=5)
    assert requests.get(url + "/TCaptcha.js", timeout=5).status_code == 500
    r = requests.get(url + "/ticket", params={"aid": DEFAULT_APP_ID}, timeout=5)
    assert r.status_code == 500 and r.json()["ret"] == 1
    reqs = [e for e in read_events(ht.host.journal.read_since(0)) if e.kind == "request"]
    assert [e.action for e in reqs].count("TCaptcha.js") == 2 and [e.action for e in reqs].count("ticket") == 4


def test_ticket_values_replay_with_the_seed(tmp_path):
    def first_tickets(d):
        with HostThread(services={"captcha": {}}, run_dir=str(d), seed=11) as h:
            return [requests.post(h.host.urls["control"] + "/captcha/tickets", timeout=5).json()["ticket"]
                    for _ in range(3)]
    a, b = first_tickets(tmp_path / "a"), first_tickets(tmp_path / "b")
    assert a == b and len(set(a)) == 3
