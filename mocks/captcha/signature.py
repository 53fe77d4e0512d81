"""TC3-HMAC-SHA256, the TencentCloud API 3.0 request signature: verify (mock side) and sign (clients).

Recomputed from what was received, as the real gateway must: the SignedHeaders list the caller
chose (must include content-type and host), header names and values lower-cased and trimmed, the
raw Content-Type (``application/json; charset=utf-8`` is signed as sent), Host including ``:port``,
credential date = UTC date of ``X-TC-Timestamp``, service ``captcha``.

What the official SDKs sign when pointed at a local endpoint (``127.0.0.1:PORT``) differs from that,
and with ``sdk_endpoint`` (the default) the mock accepts it too, nothing else:

- credential scope service = the first dot-label of the Host header (``127``; ``localhost:PORT``
  for ``localhost:PORT``): the Node.js and Java SDKs take the service name from the endpoint;
- signed ``host`` = the Host header without its ``:port`` (``127.0.0.1``): the Node.js SDK signs the
  URL's hostname.

The signature is still recomputed with the secret key of the SecretId, over the body and headers
received, so a wrong key, a changed body or a stale timestamp are still refused. A refusal carries
``why`` (``check``, ``expected``, ``got``, …) for the journal (docs/captcha.md, "Signature rules").
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping

from mocks.base.reply import refusal

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "captcha"
UNSIGNED = "UNSIGNED-PAYLOAD"

_AUTH = re.compile(r"^\s*TC3-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*"
                   r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$")
_PORT = re.compile(r"^(?P<host>\[[^\]]*\]|[^:]*):\d+$")


class SignatureError(Exception):
    """``code`` is the TencentCloud error code to answer with; ``why`` says which check failed and
    what the mock expected next to what it got (``check``, ``expected``, ``got``, ``why`` in one line,
    and for a signature mismatch the canonical request and string to sign the mock computed)."""

    def __init__(self, code: str, message: str, why: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.why = why


@dataclass
class Parsed:
    secret_id: str
    date: str
    service: str
    terminator: str
    signed_headers: list[str]
    signature: str


def utc_date(ts: int) -> str:
    return _day_date(ts // 86400)


@functools.lru_cache(maxsize=64)
def _day_date(day: int) -> str:
    t = time.gmtime(day * 86400)  # OverflowError / OSError past the platform's time_t
    if not 1 <= t.tm_year <= 9999:
        raise ValueError(f"year {t.tm_year} is out of range")
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.digest(key, msg.encode("utf-8"), "sha256")


_SIGNERS: dict[tuple[str, str, str], tuple["hashlib._Hash", "hashlib._Hash"]] = {}
_SIGNERS_MAX = 1024


def signing_key(secret_key: str, date: str, service: str) -> bytes:
    """The derived key: the HMAC chain over date, service and ``tc3_request``."""
    k_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    return _hmac(_hmac(k_date, service), "tc3_request")


def _signer(secret_key: str, date: str, service: str) -> tuple["hashlib._Hash", "hashlib._Hash"]:
    """HMAC-SHA256 with the derived key, as its two SHA-256 states after the padded key (RFC 2104).
    The key depends only on (secret key, date, service), so it is derived once per triple, as the
    real service can (it changes once a day); every request's signature is still computed in full."""
    k = (secret_key, date, service)
    signer = _SIGNERS.get(k)
    if signer is None:
        if len(_SIGNERS) >= _SIGNERS_MAX:
            _SIGNERS.clear()
        key = signing_key(secret_key, date, service).ljust(64, b"\0")  # 32 bytes: shorter than a block
        signer = _SIGNERS[k] = (hashlib.sha256(bytes(b ^ 0x36 for b in key)),
                                hashlib.sha256(bytes(b ^ 0x5C for b in key)))
    return signer


def signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    inner_pad, outer_pad = _signer(secret_key, date, service)
    inner = inner_pad.copy()
    inner.update(string_to_sign.encode("utf-8"))
    outer = outer_pad.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str],
                      signed: list[str], payload: bytes, unsigned_payload: bool) -> str:
    canon_headers = "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed)
    return _canonical(method, path, query, canon_headers, signed, _payload_digest(payload, unsigned_payload))


def _payload_digest(payload: bytes, unsigned_payload: bool) -> str:
    return hashlib.sha256(UNSIGNED.encode() if unsigned_payload else payload).hexdigest()


def _canonical(method: str, path: str, query: str, canon_headers: str, signed: list[str], digest: str) -> str:
    return "\n".join([method.upper(), path or "/", query, canon_headers, ";".join(signed), digest])


def string_to_sign(timestamp: int, date: str, service: str, canonical: str) -> str:
    scope = f"{date}/{service}/tc3_request"
    return "\n".join([ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


_SDK_PREFIX = "TC3-HMAC-SHA256 Credential="
_HEX = frozenset("0123456789abcdefABCDEF")


def _sdk_layout(value: str) -> Parsed | None:
    """The layout every SDK sends (``TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``)
    read without the regex; None for anything else (the regex decides)."""
    if not value.startswith(_SDK_PREFIX):
        return None
    cred, found, rest = value[len(_SDK_PREFIX):].partition(", SignedHeaders=")
    signed, found2, sig = rest.partition(", Signature=")
    if not (found and found2 and sig and _HEX.issuperset(sig)) or " " in cred or "," in cred or " " in signed \
            or "," in signed or not cred or not signed:
        return None
    parts = cred.split("/")
    names = signed.lower().split(";")
    if len(parts) != 4 or not parts[0] or "content-type" not in names or "host" not in names:
        return None
    return Parsed(parts[0], parts[1], parts[2], parts[3], names, sig.lower())


def parse_authorization(value: str | None) -> Parsed:
    if value:
        parsed = _sdk_layout(value)
        if parsed is not None:
            return parsed
    if not value:
        raise SignatureError("AuthFailure.InvalidAuthorization",
                             "The Authorization header is missing. Sign the request with TC3-HMAC-SHA256.",
                             refusal("Authorization header", "TC3-HMAC-SHA256 Credential=…", "none"))
    m = _AUTH.match(value)
    if not m:
        raise SignatureError("AuthFailure.InvalidAuthorization",
                             "Authorization header format error: expected `TC3-HMAC-SHA256 Credential=..., "
                             "SignedHeaders=..., Signature=...`.",
                             refusal("Authorization header",
                                       "TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=<hex>",
                                       value[:200]))
    parts = m["cred"].split("/")
    if len(parts) != 4 or not parts[0]:
        raise SignatureError("AuthFailure.InvalidAuthorization",
                             "Credential must be `SecretId/Date/Service/tc3_request`.",
                             refusal("Credential", "SecretId/Date/Service/tc3_request", m["cred"]))
    signed = m["signed"].lower().split(";")
    if "content-type" not in signed or "host" not in signed:
        raise SignatureError("AuthFailure.InvalidAuthorization",
                             "SignedHeaders must include content-type and host.",
                             refusal("SignedHeaders", "a list with content-type and host", m["signed"]))
    return Parsed(parts[0], parts[1], parts[2], parts[3], signed, m["sig"].lower())


def without_port(host: str) -> str:
    """``127.0.0.1:41001`` → ``127.0.0.1``, ``[::1]:8080`` → ``[::1]`` (a URL's hostname)."""
    m = _PORT.match(host)
    return m["host"] if m else host


def accepted_services(host: str, sdk_endpoint: bool) -> list[str]:
    """Credential scope services accepted for a request with this Host header."""
    label = host.split(".", 1)[0]
    return [SERVICE, label] if sdk_endpoint and label and label != SERVICE else [SERVICE]


def accepted_hosts(host: str, sdk_endpoint: bool) -> list[str]:
    """Signed ``host`` values accepted for a request with this Host header."""
    bare = without_port(host)
    return [host, bare] if sdk_endpoint and bare != host else [host]


def _bad_timestamp(raw_ts: str) -> SignatureError:
    return SignatureError("InvalidParameterValue", f"The value `{raw_ts}` of parameter `Timestamp` is not valid.",
                          refusal("X-TC-Timestamp header", "unix seconds", raw_ts[:40]))


def _failure(why: dict[str, str]) -> SignatureError:
    return SignatureError("AuthFailure.SignatureFailure",
                          "The provided credentials could not be validated. Please check your signature is correct.",
                          why)


def verify(*, method: str, path: str, query: str, headers: Mapping[str, str], payload: bytes,
           secret_keys: Mapping[str, str], skew_s: float, now: float | None = None,
           check_signature: bool = True, sdk_endpoint: bool = True) -> str:
    """Check a received request. Returns the SecretId; raises ``SignatureError`` otherwise.
    ``headers`` must be case-insensitive (aiohttp's ``CIMultiDict``) or keyed in lower case.
    ``sdk_endpoint``: also accept what the official SDKs sign when pointed at a local endpoint."""
    parsed = parse_authorization(headers.get("authorization"))
    raw_ts = headers.get("x-tc-timestamp")
    if raw_ts is None or not raw_ts.strip():
        raise SignatureError("MissingParameter", "The request is missing a required parameter `Timestamp`.",
                             refusal("X-TC-Timestamp header", "unix seconds", "none"))
    try:
        ts = int(raw_ts)  # surrounding whitespace allowed
    except ValueError:
        raise _bad_timestamp(raw_ts) from None
    key = secret_keys.get(parsed.secret_id)
    if key is None:
        raise SignatureError("AuthFailure.SecretIdNotFound",
                             "The SecretId is not found, please ensure that your SecretId is correct.",
                             refusal("SecretId", " or ".join(secret_keys) or "(none configured)",
                                     parsed.secret_id, "secret_keys in the captcha config"))
    now = time.time() if now is None else now
    if abs(now - ts) > skew_s:
        raise SignatureError("AuthFailure.SignatureExpire",
                             f"Signature expired. Timestamp {ts} differs from server time {int(now)} by more "
                             f"than {int(skew_s)} seconds.",
                             refusal("X-TC-Timestamp", f"within {int(skew_s)} s of {int(now)}", str(ts),
                                     f"{int(ts - now):+d} s"))
    if not check_signature:
        return parsed.secret_id
    try:
        date = utc_date(ts)
    except (ValueError, OverflowError, OSError):  # beyond year 9999 (reachable with a huge signature_skew_s)
        raise _bad_timestamp(raw_ts) from None
    getall = getattr(headers, "getall", None)  # a multidict: a repeated header is signed as its last value
    signed = parsed.signed_headers
    values = ["" if name == "host" else _last(headers, getall, name).strip().lower() for name in signed]
    host = _last(headers, getall, "host").strip().lower()
    if parsed.service != SERVICE or parsed.date != date or parsed.terminator != "tc3_request":
        _check_scope(parsed, date, ts, host, sdk_endpoint)
    digest = _payload_digest(payload, _last(headers, getall, "x-tc-content-sha256").strip() == UNSIGNED)

    def attempt(signed_host: str) -> tuple[str, str, str]:
        lines = "".join([f"{name}:{signed_host if name == 'host' else value}\n" for name, value in zip(signed, values)])
        canonical = _canonical(method, path, query, lines, signed, digest)
        to_sign = string_to_sign(ts, date, parsed.service, canonical)
        return signature(key, date, parsed.service, to_sign), canonical, to_sign

    if hmac.compare_digest(attempt(host)[0], parsed.signature):  # the Host as sent, the usual case
        return parsed.secret_id
    for signed_host in accepted_hosts(host, sdk_endpoint)[1:]:
        if hmac.compare_digest(attempt(signed_host)[0], parsed.signature):
            return parsed.secret_id
    bare = without_port(host)
    if not sdk_endpoint and bare != host and hmac.compare_digest(attempt(bare)[0], parsed.signature):
        raise _failure(refusal("signed host", f"{host} (the Host header)", bare,
                               "the host without its port, as the Node.js SDK signs it; the mock accepts it "
                               "with signature_sdk_endpoint: true"))
    expected, canonical, to_sign = attempt(host)
    raise _failure(refusal(
        "signature", expected, parsed.signature,
        f"recomputed with the SecretKey of {parsed.secret_id} over the request as received, whose scope and "
        "timestamp are right: another SecretKey, or the request changed after signing",
        canonical_request=canonical, string_to_sign=to_sign))


def _last(headers: Mapping[str, str], getall: Any, name: str) -> str:
    if getall is None:
        return headers.get(name, "")
    values = getall(name, None)
    return values[-1] if values else ""


def _check_scope(parsed: Parsed, date: str, ts: int, host: str, sdk_endpoint: bool) -> None:
    """The credential scope ``Date/Service/tc3_request`` against the timestamp and the Host header."""
    if parsed.terminator != "tc3_request":
        raise _failure(refusal("credential scope terminator", "tc3_request", parsed.terminator))
    if parsed.date != date:
        raise _failure(refusal("credential scope date", f"{date} (the UTC date of X-TC-Timestamp {ts})",
                               parsed.date))
    services = accepted_services(host, sdk_endpoint)
    if parsed.service in services:
        return
    label = host.split(".", 1)[0]
    note = ("the endpoint's first label, as the Node.js and Java SDKs sign it; the mock accepts it with "
            "signature_sdk_endpoint: true" if parsed.service == label else "")
    raise _failure(refusal("credential scope service", " or ".join(services), parsed.service, note))


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
