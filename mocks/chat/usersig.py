"""UserSig (TLSSigAPIv2) — make one and verify one the way the Chat backend does (protocols.md 3.6).

A UserSig is ``base64url*(zlib(JSON))`` where the JSON holds ``TLS.ver``, ``TLS.identifier``,
``TLS.sdkappid``, ``TLS.time``, ``TLS.expire`` (+ ``TLS.userbuf``) and ``TLS.sig`` =
``base64(HMAC-SHA256(key as UTF-8, "TLS.identifier:…\\nTLS.sdkappid:…\\nTLS.time:…\\nTLS.expire:…\\n"))``.
The character map is ``+``→``*``, ``/``→``-``, ``=``→``_``. No official package ships a verifier.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import zlib
from typing import Any

from mocks.base.reply import refusal

DEFAULT_EXPIRE = 180 * 86400
_MAX_SIG_CHARS = 8192
_MAX_INFLATED = 64 * 1024


def _content(doc: dict[str, Any]) -> str:
    text = (f"TLS.identifier:{doc['TLS.identifier']}\n"
            f"TLS.sdkappid:{doc['TLS.sdkappid']}\n"
            f"TLS.time:{doc['TLS.time']}\n"
            f"TLS.expire:{doc['TLS.expire']}\n")
    if "TLS.userbuf" in doc:
        text += f"TLS.userbuf:{doc['TLS.userbuf']}\n"
    return text


def _hmac_b64(key: str, content: str) -> str:
    return base64.b64encode(hmac.new(key.encode("utf-8"), content.encode("utf-8"), hashlib.sha256).digest()).decode()


def make_usersig(sdkappid: int, key: str, identifier: str, expire: int = DEFAULT_EXPIRE,
                 now: int | None = None, userbuf: bytes | None = None) -> str:
    doc: dict[str, Any] = {"TLS.ver": "2.0", "TLS.identifier": str(identifier), "TLS.sdkappid": int(sdkappid),
                           "TLS.expire": int(expire), "TLS.time": int(time.time() if now is None else now)}
    if userbuf is not None:
        doc["TLS.userbuf"] = base64.b64encode(userbuf).decode()
    doc["TLS.sig"] = _hmac_b64(key, _content(doc))
    raw = base64.b64encode(zlib.compress(json.dumps(doc).encode())).decode()
    return raw.replace("+", "*").replace("/", "-").replace("=", "_")


def decode_usersig(sig: str) -> dict[str, Any] | None:
    """The JSON document inside a UserSig, or None when it is not one."""
    if not sig or len(sig) > _MAX_SIG_CHARS:
        return None
    text = sig.replace("*", "+").replace("-", "/").replace("_", "=")
    try:
        packed = base64.b64decode(text, validate=True)
        d = zlib.decompressobj()
        raw = d.decompress(packed, _MAX_INFLATED)
        if d.unconsumed_tail:
            return None
        doc = json.loads(raw)
    except (binascii.Error, ValueError, zlib.error, UnicodeDecodeError, RecursionError):  # '[' * 1000: too deep
        return None
    if not isinstance(doc, dict):
        return None
    for name in ("TLS.identifier", "TLS.sdkappid", "TLS.time", "TLS.expire", "TLS.sig"):
        if name not in doc:
            return None
    for name in ("TLS.time", "TLS.expire", "TLS.sdkappid"):
        if isinstance(doc[name], bool) or not isinstance(doc[name], int):
            return None
    if not isinstance(doc["TLS.sig"], str) or not isinstance(doc["TLS.identifier"], str):
        return None
    if "TLS.userbuf" in doc and not isinstance(doc["TLS.userbuf"], str):
        return None
    return doc


def verify_usersig(sig: str, *, sdkappid: int | str, identifier: str, key: str,
                   now: float | None = None) -> str | None:
    """Check a UserSig; return None if valid, else the error name (see ``errors.CODES``):
    ``sig_invalid`` (not a UserSig), ``sig_sdkappid_mismatch``, ``sig_identifier_mismatch``,
    ``sig_wrong_key`` (HMAC over the document's own fields does not match), ``sig_expired``
    (valid while ``now < TLS.time + TLS.expire``). Checked in that order."""
    doc = decode_usersig(sig)
    if doc is None:
        return "sig_invalid"
    if str(doc["TLS.sdkappid"]) != str(sdkappid):
        return "sig_sdkappid_mismatch"
    if doc["TLS.identifier"] != identifier:
        return "sig_identifier_mismatch"
    if not hmac.compare_digest(_hmac_b64(key, _content(doc)).encode(), doc["TLS.sig"].encode("utf-8", "replace")):
        return "sig_wrong_key"
    if (time.time() if now is None else now) >= doc["TLS.time"] + doc["TLS.expire"]:
        return "sig_expired"
    return None


def explain(problem: str, sig: str, *, sdkappid: int | str, identifier: str, key: str,
            now: float | None = None) -> dict[str, str]:
    """Why ``verify_usersig`` said ``problem``: the field, what the mock expected and what the UserSig
    held (``Reply.refused``, journaled with the response)."""
    doc = decode_usersig(sig)
    if doc is None or problem == "sig_invalid":
        return refusal("UserSig", "base64url*(zlib(JSON with TLS.identifier, TLS.sdkappid, TLS.time, TLS.expire, "
                       "TLS.sig))", f"{len(sig)} characters that are not one")
    if problem == "sig_sdkappid_mismatch":
        return refusal("UserSig TLS.sdkappid", f"{sdkappid} (the app's)", str(doc["TLS.sdkappid"]))
    if problem == "sig_identifier_mismatch":
        return refusal("UserSig TLS.identifier", f"{identifier} (the identifier query parameter)",
                       doc["TLS.identifier"])
    if problem == "sig_wrong_key":
        content = _content(doc)
        return refusal("UserSig TLS.sig", _hmac_b64(key, content), doc["TLS.sig"],
                       "HMAC-SHA256 with the app's key over the UserSig's own fields: it was made with another "
                       "key, or its fields changed after signing", signed_content=content)
    end = doc["TLS.time"] + doc["TLS.expire"]
    now = time.time() if now is None else now
    return refusal("UserSig lifetime", f"now ({int(now)}) < TLS.time + TLS.expire",
                   f"{doc['TLS.time']} + {doc['TLS.expire']} = {end}", f"expired {int(now - end)} s ago")
