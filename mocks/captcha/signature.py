"""TC3-HMAC-SHA256, the TencentCloud API 3.0 request signature: verify (mock side) and sign (clients).

Recomputed from what was received, as the real gateway must: the SignedHeaders list the caller
chose (must include content-type and host), header names and values lower-cased and trimmed, the
raw Content-Type (``application/json; charset=utf-8`` is signed as sent), Host including ``:port``,
credential date = UTC date of ``X-TC-Timestamp``, service ``captcha``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Mapping

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "captcha"
UNSIGNED = "UNSIGNED-PAYLOAD"

_AUTH = re.compile(r"^\s*TC3-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*"
                   r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$")


class SignatureError(Exception):
    """``code`` is the TencentCloud error code to answer with."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Parsed:
    secret_id: str
    date: str
    service: str
    terminator: str
    signed_headers: list[str]
    signature: str


def utc_date(ts: int) -> str:
    t = time.gmtime(ts)  # OverflowError / OSError past the platform's time_t
    if not 1 <= t.tm_year <= 9999:
        raise ValueError(f"year {t.tm_year} is out of range")
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    k_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac(k_date, service)
    k_signing = _hmac(k_service, "tc3_request")
    return hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str],
                      signed: list[str], payload: bytes, unsigned_payload: bool) -> str:
    canon_headers = "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed)
    digest = hashlib.sha256(UNSIGNED.encode() if unsigned_payload else payload).hexdigest()
    return "\n".join([method.upper(), path or "/", query, canon_headers, ";".join(signed), digest])


def string_to_sign(timestamp: int, date: str, service: str, canonical: str) -> str:
    scope = f"{date}/{service}/tc3_request"
    return "\n".join([ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


def parse_authorization(value: str | None) -> Parsed:
    if not value:
        raise SignatureError("AuthFailure.InvalidAuthorization",
                             "The Authorization header is missing. Sign the request with TC3-HMAC-SHA256.")
    m = _AUTH.match(value)
    if not m:
        raise SignatureError("AuthFailure.InvalidAuthorization",
                             "Authorization header format error: expected `TC3-HMAC-SHA256 Credential=..., "
                             "SignedHeaders=..., Signature=...`.")
    parts = m["cred"].split("/")
    if len(parts) != 4 or not parts[0]:
        raise SignatureError("AuthFailure.InvalidAuthorization",
                             "Credential must be `SecretId/Date/Service/tc3_request`.")
    signed = m["signed"].lower().split(";")
    if "content-type" not in signed or "host" not in signed:
        raise SignatureError("AuthFailure.InvalidAuthorization",
                             "SignedHeaders must include content-type and host.")
    return Parsed(parts[0], parts[1], parts[2], parts[3], signed, m["sig"].lower())


def verify(*, method: str, path: str, query: str, headers: Mapping[str, str], payload: bytes,
           secret_keys: Mapping[str, str], skew_s: float, now: float | None = None,
           check_signature: bool = True) -> str:
    """Check a received request. Returns the SecretId; raises ``SignatureError`` otherwise.
    ``headers`` must be case-insensitive (aiohttp's ``CIMultiDict``) or keyed in lower case."""
    parsed = parse_authorization(headers.get("authorization"))
    raw_ts = headers.get("x-tc-timestamp")
    if raw_ts is None or not raw_ts.strip():
        raise SignatureError("MissingParameter", "The request is missing a required parameter `Timestamp`.")
    try:
        ts = int(raw_ts.strip())
    except ValueError:
        raise SignatureError("InvalidParameterValue",
                             f"The value `{raw_ts}` of parameter `Timestamp` is not valid.") from None
    if parsed.secret_id not in secret_keys:
        raise SignatureError("AuthFailure.SecretIdNotFound",
                             "The SecretId is not found, please ensure that your SecretId is correct.")
    now = time.time() if now is None else now
    if abs(now - ts) > skew_s:
        raise SignatureError("AuthFailure.SignatureExpire",
                             f"Signature expired. Timestamp {ts} differs from server time {int(now)} by more "
                             f"than {int(skew_s)} seconds.")
    if not check_signature:
        return parsed.secret_id
    try:
        date = utc_date(ts)
    except (ValueError, OverflowError, OSError):  # beyond year 9999 (reachable with a huge signature_skew_s)
        raise SignatureError("InvalidParameterValue",
                             f"The value `{raw_ts}` of parameter `Timestamp` is not valid.") from None
    lowered = {k.lower(): v for k, v in headers.items()}
    unsigned = lowered.get("x-tc-content-sha256", "").strip() == UNSIGNED
    canonical = canonical_request(method, path, query, lowered, parsed.signed_headers, payload, unsigned)
    expected = signature(secret_keys[parsed.secret_id], date, SERVICE, string_to_sign(ts, date, SERVICE, canonical))
    given_scope = (parsed.date, parsed.service, parsed.terminator)
    if given_scope != (date, SERVICE, "tc3_request") or not hmac.compare_digest(expected, parsed.signature):
        raise SignatureError("AuthFailure.SignatureFailure",
                             "The provided credentials could not be validated. Please check your signature is "
                             "correct.")
    return parsed.secret_id


def sign_headers(*, secret_id: str, secret_key: str, host: str, action: str, payload: bytes,
                 version: str = "2019-07-22", timestamp: int | None = None,
                 content_type: str = "application/json", method: str = "POST", query: str = "",
                 extra_signed: Mapping[str, str] | None = None, service: str = SERVICE) -> dict[str, str]:
    """Client side: the headers of a signed API 3.0 request (for tools and tests without the SDK)."""
    ts = int(time.time()) if timestamp is None else timestamp
    date = utc_date(ts)
    headers = {"Content-Type": content_type, "Host": host, "X-TC-Action": action,
               "X-TC-Version": version, "X-TC-Timestamp": str(ts), **(extra_signed or {})}
    signed = sorted({"content-type", "host", *(k.lower() for k in (extra_signed or {}))})
    lowered = {k.lower(): v for k, v in headers.items()}
    canonical = canonical_request(method, "/", query, lowered, signed, b"" if method == "GET" else payload, False)
    sig = signature(secret_key, date, service, string_to_sign(ts, date, service, canonical))
    headers["Authorization"] = (f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
                                f"SignedHeaders={';'.join(signed)}, Signature={sig}")
    return headers
