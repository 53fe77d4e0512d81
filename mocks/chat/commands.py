"""The REST commands the Chat mock implements, by ``"<servicename>/<command>"``.

Each handler gets the mock, the parsed call, the JSON body and a ``Caller`` (admin identifier,
client IP, RequestId) and returns a ``Reply``. Every delivered message is journaled as one
``{"kind": "message", ...}`` event (one per recipient for batchsendmsg); a message that was
accepted but not delivered is a ``{"kind": "message_refused", "reason": ...}`` event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from mocks.base import Call, Reply
from mocks.chat.errors import code_for, rest_reply
from mocks.chat.events import MESSAGE, MESSAGE_REFUSED
from mocks.chat.webhooks import before_verdict

if TYPE_CHECKING:
    from mocks.chat.service import ChatMock

U32 = 2**32 - 1
MAX_BATCH = 500
MAX_IMPORT = 100
GROUP_TYPES = {"Private", "Public", "ChatRoom", "AVChatRoom", "Community", "Work", "Meeting"}


@dataclass
class Caller:
    identifier: str
    client_ip: str
    request_id: str | None


Handler = Callable[["ChatMock", Call, dict[str, Any], Caller], Awaitable[Reply]]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn
    return register


# --- helpers --------------------------------------------------------------------------------------
def _fail(m: "ChatMock", who: Caller, name: str, **extra: Any) -> Reply:
    code, info = code_for(name, m.config.error_codes)
    return rest_reply(code, info, who.request_id, **extra)


def _ok(who: Caller, **extra: Any) -> Reply:
    return rest_reply(0, "", who.request_id, **extra)


def _u32(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= U32


def _valid_msg_body(v: Any) -> bool:
    return (isinstance(v, list) and 0 < len(v) <= 100
            and all(isinstance(e, dict) and isinstance(e.get("MsgType"), str) and isinstance(e.get("MsgContent"), dict)
                    for e in v))


def _account_ok(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v.encode()) <= 32


def _forbidden(body: dict[str, Any], flag: str) -> bool:
    ctl = body.get("ForbidCallbackControl")
    return isinstance(ctl, list) and flag in ctl


def _journal_message(m: "ChatMock", call: Call, **fields: Any) -> None:
    event = MESSAGE.event(service=m.name, action=call.action, rid=call.rid, **fields)
    m.ctx.record(event)
    m.state.messages.append({k: v for k, v in event.items() if k not in ("kind", "service")})


def _journal_refused(m: "ChatMock", call: Call, reason: str, **fields: Any) -> None:
    m.ctx.record(MESSAGE_REFUSED.event(service=m.name, action=call.action, rid=call.rid, reason=reason, **fields))


async def _before_send(m: "ChatMock", call: Call, who: Caller, event: str, msg: dict[str, Any], msg_body: Any,
                       cloud: Any, key: tuple, reject_error: str, dropped_answer: dict[str, Any],
                       **refused: Any) -> tuple[Reply | None, Any, Any]:
    """The app's before-send callback decides: ``(reply, ..)`` ends the send (rejected, or dropped with
    a success answer); ``(None, msg_body, cloud)`` delivers, with the body the app may have rewritten."""
    ans = await m.webhook(event, {**msg, "MsgBody": msg_body, "CloudCustomData": cloud,
                                  "EventTime": int(time.time() * 1000)},
                          client_ip=who.client_ip, platform="RESTAPI", ref=call.rid)
    verdict = before_verdict(ans, m.config.before_send_on_failure)
    if verdict.action == "reject":
        m.state.forget(key)
        _journal_refused(m, call, verdict.reason, **refused)
        if verdict.code is not None:
            return rest_reply(verdict.code, verdict.info or "", who.request_id), msg_body, cloud
        return _fail(m, who, reject_error), msg_body, cloud
    if verdict.action == "drop":
        _journal_refused(m, call, verdict.reason, **refused)
        return _ok(who, **dropped_answer), msg_body, cloud
    if _valid_msg_body(verdict.msg_body):
        msg_body = verdict.msg_body
    if isinstance(verdict.cloud_custom_data, str):
        cloud = verdict.cloud_custom_data
    return None, msg_body, cloud


# --- one-to-one messages --------------------------------------------------------------------------
@command("openim/sendmsg")
async def sendmsg(m: "ChatMock", call: Call, body: dict[str, Any], who: Caller) -> Reply:
    cfg = m.config
    to = body.get("To_Account")
    if to is None or to == "":
        return _fail(m, who, "to_account_missing")
    frm = body.get("From_Account", who.identifier)
    if not isinstance(to, str) or not isinstance(frm, str):
        return _fail(m, who, "account_type")
    rnd = body.get("MsgRandom")
    if not _u32(rnd):
        return _fail(m, who, "msgrandom_invalid")
    msg_body = body.get("MsgBody")
    if not _valid_msg_body(msg_body):
        return _fail(m, who, "msgbody_invalid")
    if cfg.require_accounts and to not in m.state.accounts:
        return _fail(m, who, "to_account_unknown")
    seq = body["MsgSeq"] if _u32(body.get("MsgSeq")) else m.state.rng.randint(1, U32)
    key = ("c2c", frm, to, rnd)
    first = m.state.duplicate_of(key, cfg.c2c_dedup_window_s)
    if first is not None:
        _journal_refused(m, call, "duplicate", duplicate_of=first["MsgKey"], **{"from": frm, "to": to, "random": rnd})
        return _ok(who, **first)
    now = int(time.time())
    answer = {"MsgTime": now, "MsgKey": f"{seq}_{rnd}_{now}"}
    m.state.remember(key, answer)  # reserved now: a copy arriving while the callback runs is a duplicate
    cloud = body.get("CloudCustomData", "")
    online_only = 1 if body.get("OnlineOnlyFlag") == 1 else 0
    msg = {"From_Account": frm, "To_Account": to, "MsgSeq": seq, "MsgRandom": rnd, "MsgTime": now,
           "MsgKey": answer["MsgKey"], "OnlineOnlyFlag": online_only}
    if cfg.callback_on("C2C.CallbackBeforeSendMsg") and not _forbidden(body, "ForbidBeforeSendMsgCallback"):
        stop, msg_body, cloud = await _before_send(
            m, call, who, "C2C.CallbackBeforeSendMsg", msg, msg_body, cloud, key, "c2c_callback_reject",
            answer, msg_key=answer["MsgKey"], **{"from": frm, "to": to})
        if stop is not None:
            return stop
    _journal_message(m, call, chat_type="c2c", msg_key=answer["MsgKey"], time=now, msg_seq=seq, random=rnd,
                     body=msg_body, cloud_custom_data=cloud, **{"from": frm, "to": to})
    if cfg.callback_on("C2C.CallbackAfterSendMsg") and not _forbidden(body, "ForbidAfterSendMsgCallback"):
        m.spawn_webhook("C2C.CallbackAfterSendMsg",
                        {**msg, "MsgBody": msg_body, "CloudCustomData": cloud, "SendMsgResult": 0,
                         "ErrorInfo": "send msg succeed", "UnreadMsgNum": 0,
                         "EventTime": int(time.time() * 1000)},
                        client_ip=who.client_ip, platform="RESTAPI", ref=call.rid)
    return _ok(who, **answer)


@command("openim/batchsendmsg")
async def batchsendmsg(m: "ChatMock", call: Call, body: dict[str, Any], who: Caller) -> Reply:
    """No message callbacks are sent for batchsendmsg (UNCONFIRMED, see docs/chat.md)."""
    cfg = m.config
    targets = body.get("To_Account")
    if not isinstance(targets, list) or not targets:
        return _fail(m, who, "to_account_missing")
    if len(targets) > MAX_BATCH:
        return _fail(m, who, "batch_too_many")
    frm = body.get("From_Account", who.identifier)
    if not isinstance(frm, str) or not all(isinstance(t, str) for t in targets):
        return _fail(m, who, "account_type")
    rnd = body.get("MsgRandom")
    if not _u32(rnd):
        return _fail(m, who, "msgrandom_invalid")
    msg_body = body.get("MsgBody")
    if not _valid_msg_body(msg_body):
        return _fail(m, who, "msgbody_invalid")
    seq = body["MsgSeq"] if _u32(body.get("MsgSeq")) else m.state.rng.randint(1, U32)
    now = int(time.time())
    msg_key = f"{seq}_{rnd}_{now}"
    errors = []
    unknown_code, _ = code_for("to_account_unknown", cfg.error_codes)
    for to in dict.fromkeys(targets):  # a repeated recipient in one batch gets one copy
        if cfg.require_accounts and to not in m.state.accounts:
            errors.append({"To_Account": to, "ErrorCode": unknown_code})
            continue
        key = ("c2c", frm, to, rnd)
        first = m.state.duplicate_of(key, cfg.c2c_dedup_window_s)
        if first is not None:
            _journal_refused(m, call, "duplicate", duplicate_of=first["MsgKey"], **{"from": frm, "to": to,
                                                                                     "random": rnd})
            continue
        m.state.remember(key, {"MsgTime": now, "MsgKey": msg_key})
        _journal_message(m, call, chat_type="c2c", msg_key=msg_key, time=now, msg_seq=seq, random=rnd,
                         body=msg_body, cloud_custom_data=body.get("CloudCustomData", ""),
                         **{"from": frm, "to": to})
    extra: dict[str, Any] = {"MsgKey": msg_key}
    if errors:
        extra["ErrorList"] = errors
    return _ok(who, **extra)


# --- accounts -------------------------------------------------------------------------------------
@command("im_open_login_svc/account_import")
async def account_import(m: "ChatMock", call: Call, body: dict[str, Any], who: Caller) -> Reply:
    user = body.get("UserID", body.get("Identifier"))
    if not _account_ok(user):
        return _fail(m, who, "account_param")
    m.state.accounts.add(user)
    return _ok(who)


@command("im_open_login_svc/multiaccount_import")
async def multiaccount_import(m: "ChatMock", call: Call, body: dict[str, Any], who: Caller) -> Reply:
    accounts = body.get("Accounts")
    if not isinstance(accounts, list) or not accounts or len(accounts) > MAX_IMPORT:
        return _fail(m, who, "account_param")
    failed = []
    for user in accounts:
        if _account_ok(user):
            m.state.accounts.add(user)
        else:
            failed.append(user)
    return _ok(who, FailAccounts=failed)


# --- groups ---------------------------------------------------------------------------------------
@command("group_open_http_svc/create_group")
async def create_group(m: "ChatMock", call: Call, body: dict[str, Any], who: Caller) -> Reply:
    gtype, name, gid = body.get("Type"), body.get("Name"), body.get("GroupId")
    if not isinstance(gtype, str) or gtype not in GROUP_TYPES or not isinstance(name, str) or not name:
        return _fail(m, who, "group_param")
    if gid is None:
        gid = m.state.new_group_id()
    elif not isinstance(gid, str) or not gid or gid in m.state.groups:
        return _fail(m, who, "group_param")
    g = m.state.group(gid)
    g.type, g.name, g.owner = gtype, name, body.get("Owner_Account")
    return _ok(who, GroupId=gid)


@command("group_open_http_svc/send_group_msg")
async def send_group_msg(m: "ChatMock", call: Call, body: dict[str, Any], who: Caller) -> Reply:
    cfg = m.config
    gid, rnd, msg_body = body.get("GroupId"), body.get("Random"), body.get("MsgBody")
    frm = body.get("From_Account", who.identifier)
    if not isinstance(gid, str) or not gid or not _u32(rnd) or not _valid_msg_body(msg_body):
        return _fail(m, who, "group_param")
    if not isinstance(frm, str):
        return _fail(m, who, "account_type")
    if cfg.require_groups and gid not in m.state.groups:
        return _fail(m, who, "group_not_found")
    key = ("group", gid, rnd)
    first = m.state.duplicate_of(key, cfg.group_dedup_window_s)
    if first is not None:
        _journal_refused(m, call, "duplicate", duplicate_of=first["MsgSeq"], group=gid, random=rnd,
                         **{"from": frm})
        return _ok(who, **first)
    group = m.state.group(gid)
    now = int(time.time())
    cloud = body.get("CloudCustomData", "")
    online_only = 1 if body.get("OnlineOnlyFlag") == 1 else 0
    m.state.remember(key, {"MsgTime": now, "MsgSeq": group.next_seq})  # provisional, see below
    msg = {"GroupId": gid, "Type": group.type, "From_Account": frm, "Operator_Account": who.identifier,
           "Random": rnd, "OnlineOnlyFlag": online_only}
    if cfg.callback_on("Group.CallbackBeforeSendMsg") and not _forbidden(body, "ForbidBeforeSendMsgCallback"):
        stop, msg_body, cloud = await _before_send(
            m, call, who, "Group.CallbackBeforeSendMsg", msg, msg_body, cloud, key, "group_callback_reject",
            {"MsgTime": now, "MsgSeq": group.next_seq}, group=gid, random=rnd, **{"from": frm})
        if stop is not None:
            return stop
    seq = group.next_seq
    group.next_seq += 1
    answer = {"MsgTime": now, "MsgSeq": seq}
    m.state.remember(key, answer)
    _journal_message(m, call, chat_type="group", group=gid, msg_seq=seq, time=now, random=rnd, body=msg_body,
                     cloud_custom_data=cloud, **{"from": frm})
    if cfg.callback_on("Group.CallbackAfterSendMsg") and not _forbidden(body, "ForbidAfterSendMsgCallback"):
        m.spawn_webhook("Group.CallbackAfterSendMsg",
                        {**msg, "MsgSeq": seq, "MsgTime": now, "MsgBody": msg_body, "CloudCustomData": cloud,
                         "EventTime": int(time.time() * 1000)},
                        client_ip=who.client_ip, platform="RESTAPI", ref=call.rid)
    return _ok(who, **answer)
