"""Tencent Chat REST error codes and the reply shape ``{ActionStatus, ErrorInfo, ErrorCode, RequestId}``.

Every REST answer is HTTP 200; the outcome is in ``ErrorCode`` (0 = OK). The table maps a stable
name (used in code, in ``config.error_codes`` overrides and as a rule ``effect.error``) to the code
and an English paraphrase of the documented meaning. Sources and what is UNCONFIRMED: docs/chat.md.
"""

from __future__ import annotations

from typing import Any, Mapping

from mocks.base import Reply

# name -> (default code, ErrorInfo)
CODES: dict[str, tuple[int, str]] = {
    # REST common errors (cloud.tencent.com/document/product/679/131708; protocols.md 3.5)
    "http_parse": (60002, "HTTP parse error, please check the HTTP request URL format"),
    "json_parse": (60003, "HTTP request JSON parse error, please check the JSON format"),
    "account_or_sig": (60004, "account or signature error in the request URL or JSON body"),
    "sdkappid_invalid": (60006, "SDKAppID is invalid, please check its validity"),
    "command_rate_limit": (60007, "REST API call rate exceeds the limit, please reduce the request rate"),
    "timeout": (60008, "service request timed out or bad HTTP request format, please check and retry"),
    "bad_resource": (60009, "bad request resource, please check the request URL"),
    "admin_required": (60010, "the request requires app administrator permission"),
    "app_rate_limit": (60011, "SDKAppID request rate exceeds the limit, please reduce the request rate"),
    "sdkappid_missing": (60012, "the REST API requires the SDKAppID, please check the SDKAppID in the URL"),
    "account_type": (60015, "wrong account type in the request body, accounts must be strings"),
    "too_frequent": (60018, "requests too frequent, please retry later"),
    "too_frequent_2": (60019, "requests too frequent, please retry later"),
    # UserSig (account) errors — same source; 70002 from the TRTC web error table
    "sig_expired": (70001, "UserSig has expired, please generate a new one"),
    "sig_empty": (70002, "UserSig length is 0"),
    "sig_invalid": (70003, "failed to parse the UserSig"),
    "sig_wrong_key": (70009, "UserSig verification failed: signed with another key"),
    "sig_identifier_mismatch": (70013, "the UserID in the request does not match the one in the UserSig"),
    "sig_sdkappid_mismatch": (70014, "the SDKAppID in the request does not match the one in the UserSig"),
    "account_param": (70402, "invalid parameter"),
    # one-to-one message APIs (sendmsg / batchsendmsg) — UNCONFIRMED (memory of the API pages)
    "msgbody_invalid": (90002, "MsgBody is missing or is not an array of message elements"),
    "to_account_missing": (90003, "To_Account is missing or does not exist"),
    "msgrandom_invalid": (90005, "MsgRandom is missing or is not an integer"),
    "batch_too_many": (90011, "more than 500 accounts in To_Account"),
    "to_account_unknown": (90012, "To_Account is not imported or does not exist"),
    "internal": (90994, "internal service error, please retry"),
    "c2c_callback_reject": (20006, "the app's before-send callback refused to deliver this message"),
    # group APIs — UNCONFIRMED (memory)
    "group_param": (10004, "invalid parameter"),
    "group_not_found": (10010, "the group does not exist"),
    "group_callback_reject": (10016, "the app's before-send callback refused this operation"),
}

_INFO_BY_CODE = {code: info for code, info in CODES.values()}


def code_for(name: str, overrides: Mapping[str, int] | None = None) -> tuple[int, str]:
    code, info = CODES[name]
    if overrides and name in overrides:
        code = int(overrides[name])
        info = _INFO_BY_CODE.get(code, info)
    return code, info


def info_for_code(code: int) -> str:
    return _INFO_BY_CODE.get(code, "error")


def rest_body(code: int, info: str, request_id: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ActionStatus": "OK" if code == 0 else "FAIL", "ErrorInfo": info,
                            "ErrorCode": code}
    if request_id is not None:
        body["RequestId"] = request_id
    body.update(extra)
    return body


def rest_reply(code: int, info: str, request_id: str | None, **extra: Any) -> Reply:
    return Reply.json(rest_body(code, info, request_id, **extra))


def resolve_error(name: str, overrides: Mapping[str, int] | None = None) -> tuple[int, str] | None:
    """A rule's ``effect.error``: a numeric code ("60011") or a table name ("command_rate_limit")."""
    text = name.strip()
    if text.lstrip("-").isdigit():
        code = int(text)
        return code, info_for_code(code)
    if text in CODES:
        return code_for(text, overrides)
    return None
