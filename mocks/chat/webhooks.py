"""Chat → app webhooks: URL parameters, ``Sign``, default bodies, reading the app's answer, forgeries.

Wire format (protocols.md 3.1–3.3): ``POST <url>?SdkAppid=&CallbackCommand=&contenttype=json&ClientIP=
&OptPlatform=`` (+ ``&Sign=&RequestTime=`` when a token is set; ``Sign = sha256_hex(token + RequestTime)``),
JSON body repeating ``CallbackCommand``. The app answers HTTP 200 ``{"ActionStatus":"OK","ErrorInfo":"",
"ErrorCode":0}``; non-200, a non-JSON body or ``ActionStatus`` ≠ OK is a failed callback.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import orjson

from harness.faults import Effect
from mocks.base import Outbound
from mocks.base.callbacks import Attempt
from mocks.chat.config import ChatConfig

BEFORE_COMMANDS = {"C2C.CallbackBeforeSendMsg", "Group.CallbackBeforeSendMsg", "Group.CallbackBeforeCreateGroup",
                   "Group.CallbackBeforeApplyJoinGroup", "Group.CallbackBeforeInviteJoinGroup",
                   "Sns.CallbackPrevFriendAdd", "Sns.CallbackPrevFriendResponse",
                   "OfficialAccount.CallbackBeforeSendMsg"}


BEFORE_ANSWER_LIMIT = 1 << 20
AFTER_ANSWER_LIMIT = 4096


def is_before(command: str) -> bool:
    return command in BEFORE_COMMANDS or ".CallbackBefore" in command or ".CallbackPrev" in command


def sign(token: str, request_time: int | str) -> str:
    return hashlib.sha256(f"{token}{request_time}".encode()).hexdigest()


def url_params(cfg: ChatConfig, command: str, *, client_ip: str | None, platform: str | None,
               now: float | None = None) -> dict[str, str]:
    """Query parameters in the documented order. ClientIP / OptPlatform are left out when None."""
    params = {"SdkAppid": str(cfg.sdkappid), "CallbackCommand": command, "contenttype": "json"}
    if client_ip is not None:
        params["ClientIP"] = client_ip
    if platform is not None:
        params["OptPlatform"] = platform
    if cfg.webhook_token:
        t = int(time.time() if now is None else now)
        params["Sign"] = sign(cfg.webhook_token, t)
        params["RequestTime"] = str(t)
    return params


def outbound(cfg: ChatConfig, command: str, body: dict[str, Any], *, client_ip: str | None,
             platform: str | None, url_extra: dict[str, str] | None = None) -> Outbound:
    params = url_params(cfg, command, client_ip=client_ip, platform=platform)
    params.update(url_extra or {})
    body = {"CallbackCommand": command, **{k: v for k, v in body.items() if k != "CallbackCommand"}}
    return Outbound(command, cfg.webhook_url or "", method="POST", params=params, json=body,
                    timeout_s=cfg.webhook_timeout_s,
                    match={"CallbackCommand": command, "SdkAppid": params["SdkAppid"]},
                    # a before-callback answer may carry a whole modified message: read all of it
                    response_limit=BEFORE_ANSWER_LIMIT if is_before(command) else AFTER_ANSWER_LIMIT)


def forge(cfg: ChatConfig, out: Outbound, kind: str, effect: Effect) -> Outbound:
    """Rewrite a webhook for a forgery fault. ``wrong_sdkappid``: another app's SdkAppid (Sign stays
    valid); ``bad_sign``: Sign made with a different token; ``missing_sign``: no Sign and no
    RequestTime; ``stale_time``: RequestTime ``stale_time_s`` in the past with a Sign that is valid
    for it (so only the freshness check can catch it)."""
    params = dict(out.params)
    token = cfg.webhook_token or ""
    if kind == "wrong_sdkappid":
        params["SdkAppid"] = str(cfg.forged_sdkappid if cfg.forged_sdkappid is not None else cfg.sdkappid + 1)
    elif kind == "bad_sign":
        t = params.get("RequestTime") or str(int(time.time()))
        params["Sign"] = sign("forged-" + token, t)
        params["RequestTime"] = t
    elif kind == "missing_sign":
        params.pop("Sign", None)
        params.pop("RequestTime", None)
    elif kind == "stale_time":
        t = str(int(time.time()) - cfg.stale_time_s)
        params["Sign"] = sign(token, t)
        params["RequestTime"] = t
    else:
        raise ValueError(f"chat cannot forge a webhook as {kind!r} "
                         "(have wrong_sdkappid, bad_sign, missing_sign, stale_time)")
    return replace(out, params=params)


@dataclass
class Answer:
    """How Chat reads the app's reply to one webhook."""

    ok: bool
    failure: str | None = None          # not_sent / refused / timeout / error / http_status / not_json / fail
    status: int | None = None
    action_status: str | None = None
    error_code: int | None = None
    error_info: str | None = None
    data: dict[str, Any] | None = None
    attempts: int = 0

    def public(self) -> dict[str, Any]:
        return {"ok": self.ok, "failure": self.failure, "status": self.status,
                "ActionStatus": self.action_status, "ErrorCode": self.error_code,
                "ErrorInfo": self.error_info, "attempts": self.attempts}


def read_answer(attempts: list[Attempt]) -> Answer:
    if not attempts:
        return Answer(False, "not_sent")
    chosen = next((a for a in attempts if a.outcome == "delivered"), attempts[-1])
    n = len(attempts)
    if chosen.outcome not in ("delivered", "http_error"):
        return Answer(False, chosen.outcome, attempts=n)
    if chosen.status != 200:
        return Answer(False, "http_status", status=chosen.status, attempts=n)
    try:
        data = orjson.loads(chosen.body)
    except orjson.JSONDecodeError:
        return Answer(False, "not_json", status=200, attempts=n)
    if not isinstance(data, dict):
        return Answer(False, "not_json", status=200, attempts=n)
    code = data.get("ErrorCode")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    info = data.get("ErrorInfo") if isinstance(data.get("ErrorInfo"), str) else None
    status = data.get("ActionStatus") if isinstance(data.get("ActionStatus"), str) else None
    ok = status == "OK"
    return Answer(ok, None if ok else "fail", 200, status, code, info, data, n)


@dataclass
class BeforeSendDecision:
    """A before-send callback's decision: deliver (maybe modified), reject (error to sender), drop."""

    action: str                 # deliver / reject / drop
    reason: str                 # app_allow / app_reject / app_drop / app_custom_error / callback_failed
    code: int | None = None     # for reject: custom 120001–130000, else the service's reject code
    info: str | None = None
    msg_body: Any = None
    cloud_custom_data: Any = None


def before_verdict(answer: Answer, on_failure: str) -> BeforeSendDecision:
    """ErrorCode 0 = deliver (MsgBody / CloudCustomData in the answer replace the message's),
    1 = reject, 2 = drop silently (sender sees success), 120001–130000 = reject with that code and
    ErrorInfo. A failed callback (timeout, non-200, non-JSON) follows ``before_send_on_failure``.
    A well-formed answer is read by ErrorCode even when ActionStatus is FAIL."""
    if answer.data is None:
        return BeforeSendDecision("deliver" if on_failure == "deliver" else "reject", "callback_failed")
    code = answer.error_code
    if code == 0:
        return BeforeSendDecision("deliver", "app_allow", msg_body=answer.data.get("MsgBody"),
                       cloud_custom_data=answer.data.get("CloudCustomData"))
    if code == 2:
        return BeforeSendDecision("drop", "app_drop")
    if code is not None and 120001 <= code <= 130000:
        return BeforeSendDecision("reject", "app_custom_error", code, answer.error_info or "")
    if code == 1:
        return BeforeSendDecision("reject", "app_reject")
    return BeforeSendDecision("deliver" if on_failure == "deliver" else "reject", "callback_failed")


# --- default bodies for on-demand callbacks (control API) -------------------------------------------
def _now_s() -> int:
    return int(time.time())


def _now_ms() -> int:
    return int(time.time() * 1000)


_TEXT = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello"}}]

TEMPLATES: dict[str, tuple[str | None, Callable[[], dict[str, Any]]]] = {
    # command: (default OptPlatform, body factory)
    "Alert.RequestOverLimit": ("RESTAPI", lambda: {"ServiceName": "openim", "Command": "sendmsg",
                                                   "Request": 200, "Limit": 200}),
    "State.StateChange": ("Web", lambda: {"EventTime": _now_ms(), "Info": {
        "Action": "Login", "To_Account": "user1", "Reason": "Register"}, "KickedDevice": []}),
    "C2C.CallbackBeforeSendMsg": ("RESTAPI", lambda: {
        "From_Account": "user1", "To_Account": "user2", "MsgSeq": 1, "MsgRandom": 1, "MsgTime": _now_s(),
        "MsgKey": f"1_1_{_now_s()}", "OnlineOnlyFlag": 0, "MsgBody": _TEXT, "CloudCustomData": "",
        "EventTime": _now_ms()}),
    "C2C.CallbackAfterSendMsg": ("RESTAPI", lambda: {
        "From_Account": "user1", "To_Account": "user2", "MsgSeq": 1, "MsgRandom": 1, "MsgTime": _now_s(),
        "MsgKey": f"1_1_{_now_s()}", "OnlineOnlyFlag": 0, "MsgBody": _TEXT, "CloudCustomData": "",
        "SendMsgResult": 0, "ErrorInfo": "send msg succeed", "UnreadMsgNum": 0, "EventTime": _now_ms()}),
    "Group.CallbackBeforeSendMsg": ("RESTAPI", lambda: {
        "GroupId": "@TGS#1", "Type": "Public", "From_Account": "user1", "Operator_Account": "user1",
        "Random": 1, "OnlineOnlyFlag": 0, "MsgBody": _TEXT, "CloudCustomData": "", "EventTime": _now_ms()}),
    "Group.CallbackAfterSendMsg": ("RESTAPI", lambda: {
        "GroupId": "@TGS#1", "Type": "Public", "From_Account": "user1", "Operator_Account": "user1",
        "Random": 1, "MsgSeq": 1, "MsgTime": _now_s(), "OnlineOnlyFlag": 0, "MsgBody": _TEXT,
        "CloudCustomData": "", "EventTime": _now_ms()}),
}


def template(command: str) -> tuple[str | None, dict[str, Any]]:
    """(default OptPlatform, default body) for a command; unknown commands get only EventTime."""
    platform, factory = TEMPLATES.get(command, ("RESTAPI", lambda: {"EventTime": _now_ms()}))
    return platform, factory()
