"""Reference Tencent Chat backend: the webhook endpoint for Chat callbacks, and a REST caller.

Webhook (``POST $WEBHOOK_PATH``, default ``/im/callback``), correct behaviour (VARIANT=correct):
- refuses a callback whose ``SdkAppid`` is not ours, or (with WEBHOOK_TOKEN set) whose ``Sign`` is
  missing / not ``sha256_hex(token + RequestTime)`` / whose ``RequestTime`` is more than
  SIGN_MAX_AGE_S (60) from now: HTTP 403 ``{"ActionStatus": "FAIL", "ErrorCode": 1, ...}``;
- answers genuine ones at once with HTTP 200 ``{"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}``
  (slow work goes to the outbox; Chat gives up after 2 s);
- is idempotent: a repeated delivery of the same callback gets the first answer and does nothing;
- keeps the newest state: a ``State.StateChange`` older (EventTime) than what it has is ignored.
What it does with callbacks: ``State.StateChange`` → presence, and a "welcome back" message on
Login (REST ``openim/sendmsg``); ``C2C.CallbackBeforeSendMsg`` → masks BLOCKED_WORDS (ErrorCode 0
with a modified MsgBody); ``C2C.CallbackAfterSendMsg`` → message archive; ``Alert.RequestOverLimit``
→ paces that REST command at BACKOFF_SHARE (0.5) of the alarm's Limit for BACKOFF_HOLD_S (60 s).

REST: ``POST /notify {"to": ..., "text": ...}`` queues an ``openim/sendmsg`` (202); the outbox
sends it with an admin UserSig (tls-sig-api-v2), retries transient failures with exponential
back-off and slows down on 60007/60011/60018/60019. ``GET /presence/<user>``, ``GET /archive``,
``GET /stats``, ``GET /health`` show the state.

Bug variants (VARIANT=…): no_sdkappid_check, no_sign_check, slow_webhook (answers after
SLOW_WEBHOOK_S = 3 s), no_backoff (keeps its REST rate after Alert.RequestOverLimit), racy_dedupe
(checks "seen?" and marks seen in separate steps: copies that arrive together are all handled).

Env: PORT, CHAT_URL (REST base URL), SDKAPPID, USERSIG_KEY (or CHAT_SECRET_KEY), ADMIN,
WEBHOOK_TOKEN, WEBHOOK_PATH, VARIANT, SIGN_MAX_AGE_S, DEDUP_TTL_S (600), REST_TIMEOUT_S (5),
SEND_QPS (100), BACKOFF_SHARE, BACKOFF_HOLD_S, RETRY_BASE_S (1), RETRY_MAX_S (30), MAX_ATTEMPTS (8),
SENDER_THREADS (4), SLOW_WEBHOOK_S, BLOCKED_WORDS (comma-separated, default "spam").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from typing import Any

from flask import Flask, jsonify, request

from chat_rest import ChatRest, Outbox, Settings
from webhook_auth import check_sdkappid, check_sign

VARIANT = os.environ.get("VARIANT", "correct")
SDKAPPID = int(os.environ.get("SDKAPPID", "1400000000"))
WEBHOOK_TOKEN = os.environ.get("WEBHOOK_TOKEN") or None
WEBHOOK_PATH = os.environ.get("WEBHOOK_PATH", "/im/callback")
SIGN_MAX_AGE_S = float(os.environ.get("SIGN_MAX_AGE_S", "60"))
DEDUP_TTL_S = float(os.environ.get("DEDUP_TTL_S", "600"))
SLOW_WEBHOOK_S = float(os.environ.get("SLOW_WEBHOOK_S", "3"))
RACY_WORK_S = 0.05   # racy_dedupe: the work between "seen?" and "mark seen" (an audit write, a lookup)
BLOCKED = [w.strip() for w in os.environ.get("BLOCKED_WORDS", "spam").split(",") if w.strip()]
BLOCKED_RE = re.compile("|".join(re.escape(w) for w in BLOCKED), re.I) if BLOCKED else None
OK = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
log = logging.getLogger("chat_backend")
app = Flask(__name__)

rest = ChatRest(os.environ.get("CHAT_URL", "http://127.0.0.1:8081"), SDKAPPID,
                os.environ.get("USERSIG_KEY") or os.environ.get("CHAT_SECRET_KEY", ""),
                os.environ.get("ADMIN", "administrator"), float(os.environ.get("REST_TIMEOUT_S", "5")))
outbox = Outbox(rest, Settings(
    send_qps=float(os.environ.get("SEND_QPS", "100")),
    backoff_share=float(os.environ.get("BACKOFF_SHARE", "0.5")),
    backoff_hold_s=float(os.environ.get("BACKOFF_HOLD_S", "60")),
    retry_base_s=float(os.environ.get("RETRY_BASE_S", "1")),
    retry_max_s=float(os.environ.get("RETRY_MAX_S", "30")),
    max_attempts=int(os.environ.get("MAX_ATTEMPTS", "8")),
    threads=int(os.environ.get("SENDER_THREADS", "4")),
    backoff=VARIANT != "no_backoff"))


class Seen:
    """Callbacks already handled (by content), with the answer given, kept for ``ttl`` seconds."""

    def __init__(self, ttl: float, cap: int = 100_000):
        self.ttl, self.cap = ttl, cap
        self._answers: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        hit = self._answers.get(key)
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl else None

    def put(self, key: str, answer: dict[str, Any]) -> None:
        now = time.monotonic()
        if len(self._answers) >= self.cap:
            self._answers = {k: v for k, v in self._answers.items() if now - v[0] < self.ttl}
            while len(self._answers) >= self.cap:
                self._answers.pop(next(iter(self._answers)))
        self._answers[key] = (now, answer)


lock = threading.Lock()
seen = Seen(DEDUP_TTL_S)
presence: dict[str, dict[str, Any]] = {}
archive: dict[str, dict[str, Any]] = {}
counts = {"handled": 0, "duplicates": 0, "refused": 0, "stale_events": 0}


def callback_key(command: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((command + "\n" + json.dumps(body, sort_keys=True, default=str)).encode()).hexdigest()


def msg_random(key: str) -> int:
    return int(key[:8], 16)  # the same event always makes the same MsgRandom: Chat drops repeats too


# --- what we do with each callback (under ``lock``; must stay fast) ------------------------------
def on_state_change(body: dict[str, Any], key: str) -> dict[str, Any]:
    info = body.get("Info") if isinstance(body.get("Info"), dict) else {}
    user, action = info.get("To_Account"), info.get("Action")
    t = body.get("EventTime") if isinstance(body.get("EventTime"), int) else 0
    if not isinstance(user, str) or not user:
        return OK
    last = presence.get(user)
    if last is not None and t < last["event_time"]:
        counts["stale_events"] += 1  # an older event delivered late: the newer one wins
        return OK
    presence[user] = {"online": action == "Login", "action": action, "event_time": t}
    if action == "Login":
        outbox.submit("openim/sendmsg", {
            "SyncOtherMachine": 2, "To_Account": user, "MsgRandom": msg_random(key),
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": f"welcome back, {user}"}}]})
    return OK


def on_before_send(body: dict[str, Any]) -> dict[str, Any]:
    elems = body.get("MsgBody")
    if BLOCKED_RE is None or not isinstance(elems, list):
        return OK
    changed, out = False, []
    for e in elems:
        text = e.get("MsgContent", {}).get("Text") if isinstance(e, dict) and isinstance(e.get("MsgContent"), dict) else None
        if isinstance(text, str) and e.get("MsgType") == "TIMTextElem" and BLOCKED_RE.search(text):
            e = {**e, "MsgContent": {**e["MsgContent"], "Text": BLOCKED_RE.sub("***", text)}}
            changed = True
        out.append(e)
    return {**OK, "MsgBody": out} if changed else OK


def on_after_send(body: dict[str, Any]) -> dict[str, Any]:
    key = body.get("MsgKey")
    if isinstance(key, str) and key:
        archive[key] = {k: body.get(k) for k in ("From_Account", "To_Account", "MsgTime", "MsgBody")}
    return OK


def on_overlimit(body: dict[str, Any]) -> dict[str, Any]:
    outbox.on_overlimit_alarm(str(body.get("ServiceName")), str(body.get("Command")), body.get("Limit"),
                              body.get("Request"))
    return OK


HANDLERS = {"State.StateChange": lambda b, k: on_state_change(b, k),
            "C2C.CallbackBeforeSendMsg": lambda b, k: on_before_send(b),
            "C2C.CallbackAfterSendMsg": lambda b, k: on_after_send(b),
            "Alert.RequestOverLimit": lambda b, k: on_overlimit(b)}


def refuse(status: int, why: str) -> Any:
    with lock:
        counts["refused"] += 1
    log.warning("webhook refused: %s (%s)", why, request.query_string.decode("utf-8", "replace")[:300])
    return jsonify(ActionStatus="FAIL", ErrorInfo=why, ErrorCode=1), status


def racy_handle(command: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    """The racy_dedupe bug: "seen?", then the handling and its bookkeeping (RACY_WORK_S), then "mark
    seen", each step on its own — copies that arrive together all pass the check."""
    with lock:
        answer = seen.get(key)
    if answer is not None:
        return answer
    with lock:
        handler = HANDLERS.get(command)
        answer = handler(body, key) if handler else OK
        counts["handled"] += 1
    time.sleep(RACY_WORK_S)
    with lock:
        seen.put(key, answer)
    return answer


@app.post(WEBHOOK_PATH)
def webhook() -> Any:
    args = request.args
    if VARIANT != "no_sdkappid_check":
        problem = check_sdkappid(args, SDKAPPID)
        if problem:
            return refuse(403, problem)
    if VARIANT != "no_sign_check":
        problem = check_sign(args, WEBHOOK_TOKEN, SIGN_MAX_AGE_S)
        if problem:
            return refuse(403, problem)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return refuse(400, "body is not a JSON object")
    command = args.get("CallbackCommand") or body.get("CallbackCommand")
    if not isinstance(command, str) or not command:
        return refuse(400, "no CallbackCommand")
    key = callback_key(command, body)
    if VARIANT == "racy_dedupe":
        return jsonify(racy_handle(command, body, key))
    with lock:
        answer = seen.get(key)
        if answer is not None:
            counts["duplicates"] += 1
        else:
            handler = HANDLERS.get(command)
            answer = handler(body, key) if handler else OK
            seen.put(key, answer)
            counts["handled"] += 1
    if VARIANT == "slow_webhook":
        time.sleep(SLOW_WEBHOOK_S)  # the bug: slow work before answering
    return jsonify(answer)


@app.post("/notify")
def notify() -> Any:
    data = request.get_json(silent=True) or {}
    to, text = data.get("to"), data.get("text")
    if not isinstance(to, str) or not 0 < len(to.encode()) <= 32:
        return jsonify(ok=False, error="to: expected a UserID of 1-32 bytes"), 400
    if not isinstance(text, str) or not text or len(text) > 4000:
        return jsonify(ok=False, error="text: expected 1-4000 characters"), 400
    body = {"SyncOtherMachine": 2, "To_Account": to, "MsgRandom": int.from_bytes(os.urandom(4), "big"),
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]}
    return jsonify(ok=True, queued=outbox.submit("openim/sendmsg", body)), 202


@app.get("/presence/<user>")
def get_presence(user: str) -> Any:
    with lock:
        p = presence.get(user)
    return jsonify(user=user, online=bool(p and p["online"]), last=p)


@app.get("/archive")
def get_archive() -> Any:
    with lock:
        keys = sorted(archive)
    return jsonify(count=len(keys), keys=keys[-100:])


@app.get("/stats")
def stats() -> Any:
    with lock:
        hooks = dict(counts)
    return jsonify(variant=VARIANT, webhooks=hooks, outbox=outbox.stats())


@app.get("/health")
def health() -> Any:
    return jsonify(ok=True, variant=VARIANT)


if __name__ == "__main__":
    from werkzeug.serving import run_simple
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple("127.0.0.1", int(os.environ.get("PORT", "8080")), app, threaded=True)
