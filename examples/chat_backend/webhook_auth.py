"""Is a Tencent Chat callback really from Chat, for our app? (protocols.md 3.1-3.2)

- ``SdkAppid`` in the URL must be our SDKAppID;
- with a callback token configured, ``Sign`` must be ``sha256_hex(token + RequestTime)`` and
  ``RequestTime`` (unix seconds) within ``max_age_s`` of now (60 s, as the shared LiveKit scheme says).

Returns the reason for refusing, or None.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Mapping


def expected_sign(token: str, request_time: str) -> str:
    return hashlib.sha256(f"{token}{request_time}".encode()).hexdigest()


def check_sdkappid(args: Mapping[str, str], sdkappid: int) -> str | None:
    got = (args.get("SdkAppid") or "").strip()
    if not got:
        return "missing SdkAppid"
    if got != str(sdkappid):
        return f"SdkAppid {got[:20]} is not ours"
    return None


def check_sign(args: Mapping[str, str], token: str | None, max_age_s: float, now: float | None = None) -> str | None:
    if not token:
        return None  # callback authentication is not switched on for this app
    sign, request_time = args.get("Sign") or "", args.get("RequestTime") or ""
    if not sign or not request_time:
        return "missing Sign or RequestTime"
    if not request_time.isdigit() or len(request_time) > 12:
        return "bad RequestTime"
    if not hmac.compare_digest(sign.lower().encode(), expected_sign(token, request_time).encode()):
        return "bad Sign"
    now = time.time() if now is None else now
    if abs(now - int(request_time)) > max_age_s:
        return "stale RequestTime"
    return None
