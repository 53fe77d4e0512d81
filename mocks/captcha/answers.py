"""The shapes the real captcha API answers in: API 3.0 errors and DescribeCaptcha*Result results.

Every answer is HTTP 200 with ``Content-Type: application/json`` exactly (the Python SDK ignores an
``Error`` body under any other content type) and carries ``Response.RequestId``.
"""

from __future__ import annotations

from typing import Any

from mocks.base import Reply

# CaptchaMsg labels, from the SDK model text (protocols.md 1.4, older table; 1..26, 100, 104).
CAPTCHA_MSG: dict[int, str] = {
    1: "OK", 6: "user code len error", 7: "captcha no match", 8: "verify timeout", 9: "Sequnce repeat",
    10: "Sequnce invalid", 11: "Cookie invalid", 12: "sig len error", 13: "verify ip no match",
    15: "decrypt fail", 16: "appid no match", 17: "cmd no much", 18: "uin no match", 19: "seq redirect",
    20: "opt no vcode", 21: "diff", 22: "captcha type not match", 23: "verify type error", 24: "invalid pkg",
    25: "bad visitor", 26: "system busy", 100: "param err appsecretkey", 104: "Ticket Reuse",
}

# DescribeCaptchaMiniResult has its own code table (protocols.md 1.10); labels are UNCONFIRMED.
MINI_MSG: dict[int, str] = {
    1: "OK", 7: "appid no match", 8: "verify timeout", 9: "Sequnce repeat", 10: "ticket format error",
    15: "decrypt fail", 16: "appid format error", 21: "diff", 25: "invalid ticket", 26: "system busy",
    31: "UnauthorizedOperation.Unauthorized", 100: "param err appsecretkey", 104: "Ticket Reuse",
}

# Error messages: InternalError is quoted from the disaster-recovery doc; the rest are close
# paraphrases of TencentCloud's English messages (exact wording UNCONFIRMED).
ERROR_MSG: dict[str, str] = {
    "InternalError": "An internal error has occurred. Retry your request, but if the problem persists, "
                     "contact us.",
    "RequestLimitExceeded": "Your request rate exceeds the limit. Please reduce the request frequency and "
                            "try again.",
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. Please check your "
                                    "signature is correct.",
    "AuthFailure.SignatureExpire": "Signature expired. The request timestamp differs from server time by "
                                   "more than 5 minutes.",
    "AuthFailure.SecretIdNotFound": "The SecretId is not found, please ensure that your SecretId is correct.",
    "AuthFailure.InvalidSecretId": "Invalid key (not a TencentCloud API key type).",
    "AuthFailure.UnauthorizedOperation": "The request is not authorized (CAM).",
    "UnauthorizedOperation.ErrAuth": "Authentication failed.",
    "UnauthorizedOperation.Unauthorized": "The captcha service is not activated, has no package, or the "
                                          "account is in arrears.",
    "ResourceUnavailable": "The resource is unavailable.",
    "LimitExceeded": "A quota limit was exceeded.",
    "FailedOperation": "The operation failed.",
}


def error_reply(code: str, message: str | None, request_id: str, refused: dict[str, Any] | None = None) -> Reply:
    """The API's error shape; ``refused`` (why the mock refused the request) goes to the journal only."""
    msg = message or ERROR_MSG.get(code) or f"{code} (injected by the chaos harness)."
    reply = Reply.json({"Response": {"Error": {"Code": code, "Message": msg}, "RequestId": request_id}})
    reply.refused = refused
    return reply


def result_body(code: int, request_id: str, *, evil_level: int = 0, get_time: int = 0,
                submit_time: int = 0, mini: bool = False) -> dict[str, Any]:
    if mini:
        return {"CaptchaCode": code, "CaptchaMsg": MINI_MSG.get(code, CAPTCHA_MSG.get(code, "")),
                "RequestId": request_id}
    return {"CaptchaCode": code, "CaptchaMsg": CAPTCHA_MSG.get(code, ""), "EvilLevel": evil_level,
            "GetCaptchaTime": get_time, "EvilBitmap": None, "SubmitCaptchaTime": submit_time,
            "DeviceRiskCategory": None, "RequestId": request_id}


def result_reply(code: int, request_id: str, **kw: Any) -> Reply:
    if code == 26 and not kw.get("mini"):
        # exactly the DR doc's sample for "system busy", with retcode/retmsg outside Response
        return Reply.json({"Response": {"CaptchaCode": 26, "CaptchaMsg": CAPTCHA_MSG[26], "EvilLevel": 0,
                                        "GetCaptchaTime": 0, "RequestId": request_id},
                           "retcode": 0, "retmsg": "ok"})
    body: dict[str, Any] = {"Response": result_body(code, request_id, **kw)}
    if code == 26:
        body["retcode"], body["retmsg"] = 0, "ok"  # the mini DR doc shows the same extra keys
    return Reply.json(body)
