"""Reference captcha backend: a login endpoint that verifies Tencent Captcha tickets with the
official SDK and follows the disaster-recovery rules.

Correct behaviour (VARIANT=correct):
- DescribeCaptchaResult with a bounded timeout (VERIFY_TIMEOUT, default 2 s);
- fail open — skip verification — when the call times out / cannot connect / gets a non-200 or a
  non-JSON answer, when it answers InternalError, and when CaptchaCode is 26 (system busy);
- a disaster-recovery ticket ``terror_<code>_<appid>_<unix s>`` (or ``trerror_``) is accepted only
  for our CaptchaAppId and while fresh (DR_MAX_AGE, default 300 s);
- otherwise pass only CaptchaCode 1 (and not EvilLevel 100).

Bug variants (VARIANT=…), each a classic mistake:
  fail_closed       InternalError / unavailable service blocks the user
  no_timeout        no timeout on the verification call (the SDK default is 60 s)
  code26_as_bad     CaptchaCode 26 treated as a bad ticket
  terror_forever    any terror_ ticket accepted, any appid, any age
  skip_verification never calls the service at all
  retry_hammer      retries a failing verification at once, six calls in a row, then fails open

Env: PORT, CAPTCHA_ENDPOINT (host:port of the Captcha API — the mock or a proxy in front of it),
TENCENT_SECRET_ID, TENCENT_SECRET_KEY, CAPTCHA_APP_ID, CAPTCHA_APP_SECRET_KEY, VERIFY_TIMEOUT,
DR_MAX_AGE, VARIANT.
"""

from __future__ import annotations

import os
import re
import time

from flask import Flask, jsonify, request
from tencentcloud.captcha.v20190722 import captcha_client, models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

VARIANT = os.environ.get("VARIANT", "correct")
APP_ID = int(os.environ.get("CAPTCHA_APP_ID", "190000001"))
APP_SECRET = os.environ.get("CAPTCHA_APP_SECRET_KEY", "")
DR_MAX_AGE = float(os.environ.get("DR_MAX_AGE", "300"))
VERIFY_TIMEOUT = float(os.environ.get("VERIFY_TIMEOUT", "2"))
DR_TICKET = re.compile(r"^t?r?error_(\d+)_(\d+?)_?(\d{10})$")

app = Flask(__name__)


def client() -> captcha_client.CaptchaClient:
    http = HttpProfile(protocol="http", endpoint=os.environ["CAPTCHA_ENDPOINT"], reqMethod="POST")
    http.reqTimeout = 60 if VARIANT == "no_timeout" else VERIFY_TIMEOUT
    cred = credential.Credential(os.environ["TENCENT_SECRET_ID"], os.environ["TENCENT_SECRET_KEY"])
    return captcha_client.CaptchaClient(cred, "", ClientProfile(httpProfile=http))


def check_dr_ticket(ticket: str) -> tuple[bool, str]:
    if VARIANT == "terror_forever":
        return True, "dr ticket"
    m = DR_TICKET.match(ticket)
    if not m:
        return False, "malformed dr ticket"
    appid, ts = int(m.group(2)), int(m.group(3))
    if appid != APP_ID:
        return False, "dr ticket for another app"
    if not -60 <= time.time() - ts <= DR_MAX_AGE:
        return False, "stale dr ticket"
    return True, "dr ticket"


HAMMER_CALLS = 6


def describe(req: models.DescribeCaptchaResultRequest) -> models.DescribeCaptchaResultResponse:
    """One call; the retry_hammer bug calls again at once while the service is unavailable."""
    calls = HAMMER_CALLS if VARIANT == "retry_hammer" else 1
    for call in range(calls):
        try:
            return client().DescribeCaptchaResult(req)
        except TencentCloudSDKException as e:
            unavailable = e.get_code() == "InternalError" or not e.get_request_id()
            if call == calls - 1 or not unavailable:
                raise
    raise AssertionError("unreachable")


def verify(ticket: str, randstr: str, user_ip: str) -> tuple[bool, str]:
    if VARIANT == "skip_verification":
        return True, "not verified"
    if ticket.startswith(("terror_", "trerror_")):
        return check_dr_ticket(ticket)
    req = models.DescribeCaptchaResultRequest()
    req.CaptchaType, req.Ticket, req.Randstr, req.UserIp = 9, ticket, randstr, user_ip
    req.CaptchaAppId, req.AppSecretKey = APP_ID, APP_SECRET
    try:
        resp = describe(req)
    except TencentCloudSDKException as e:
        # No RequestId: the API never answered (timeout, refused, 5xx page, cut-off body).
        unavailable = e.get_code() == "InternalError" or not e.get_request_id()
        if unavailable and VARIANT != "fail_closed":
            return True, f"verification skipped ({e.get_code()})"
        return False, f"verification failed ({e.get_code()})"
    except ValueError as e:  # a truncated or non-JSON body
        if VARIANT == "fail_closed":
            return False, "verification failed"
        return True, f"verification skipped ({type(e).__name__})"
    code = resp.CaptchaCode
    if code == 26 and VARIANT != "code26_as_bad":
        return True, "verification skipped (CaptchaCode 26)"
    if code == 1 and resp.EvilLevel != 100:
        return True, "verified"
    return False, f"CaptchaCode {code}"


@app.post("/login")
def login():
    body = request.get_json(silent=True) or {}
    ticket, randstr = str(body.get("ticket") or ""), str(body.get("randstr") or "")
    if not ticket:
        return jsonify(ok=False, reason="no ticket"), 400
    ok, reason = verify(ticket, randstr, request.remote_addr or "127.0.0.1")
    return jsonify(ok=ok, reason=reason, user=body.get("user")), (200 if ok else 403)


@app.get("/health")
def health():
    return jsonify(ok=True, variant=VARIANT)


if __name__ == "__main__":
    from werkzeug.serving import run_simple
    run_simple("127.0.0.1", int(os.environ.get("PORT", "8080")), app, threaded=True)
