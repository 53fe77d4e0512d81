"""The ``in.php`` methods the mock accepts: which parameters each requires (and the error code when
one is missing), where its sitekey lives, and what shape its answer has. Answers are derived from
the run seed and the task number, so the same run produces the same tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import orjson

from mocks.solver.wire import Fields


@dataclass(frozen=True)
class Method:
    name: str
    required: tuple[tuple[str, str], ...] = ()   # (parameter, error code when missing)
    sitekey: str | None = None                   # parameter holding the site key
    answer: str = "token"                        # token | text | geetest | lemin | cells
    prefix: str = ""                             # token prefix, for realism
    needs_proxy: bool = False
    image: bool = False
    user_agent: bool = False                     # answer carries a user_agent (always)


_PAGE = ("pageurl", "ERROR_PAGEURL")
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("userrecaptcha", (("googlekey", "ERROR_GOOGLEKEY"), _PAGE), "googlekey", prefix="03AFcWeA"),
    Method("hcaptcha", (("sitekey", "ERROR_GOOGLEKEY"), _PAGE), "sitekey", prefix="P1_eyJ0eXAiOiJKV1Q"),
    Method("turnstile", (("sitekey", "ERROR_GOOGLEKEY"), _PAGE), "sitekey", prefix="0."),
    Method("friendly_captcha", (("sitekey", "ERROR_GOOGLEKEY"), _PAGE), "sitekey", prefix="fc."),
    Method("captchafox", (("sitekey", "ERROR_GOOGLEKEY"), _PAGE), "sitekey", prefix="cfx.", needs_proxy=True,
           user_agent=True),
    Method("cloudflare_challenge", (_PAGE,), None, prefix="cf_clearance.", needs_proxy=True, user_agent=True),
    Method("geetest", (("gt", "ERROR_BAD_PARAMETERS"), ("challenge", "ERROR_BAD_PARAMETERS"), _PAGE), "gt",
           answer="geetest"),
    Method("lemin", (("captcha_id", "ERROR_BAD_PARAMETERS"), ("div_id", "ERROR_BAD_PARAMETERS"), _PAGE),
           "captcha_id", answer="lemin"),
    Method("base64", (), None, answer="text", image=True),
    Method("post", (), None, answer="text", image=True),
    Method("bls", (("image_base64_1", "ERROR_BAD_PARAMETERS"),), None, answer="cells"),
)}

PROXY_TYPES = ("HTTP", "HTTPS", "SOCKS4", "SOCKS5")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "bmp", "webp")
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"RIFF")


def check_params(method: Method, fields: Fields) -> str | None:
    """The error code the real API gives for missing parameters, or None."""
    for name, code in method.required:
        if not fields.get(name).strip():
            return code
    proxy, ptype = fields.get("proxy").strip(), fields.get("proxytype").strip()
    if method.needs_proxy and not proxy:
        return "ERROR_BAD_PARAMETERS"
    if proxy and ptype.upper() not in PROXY_TYPES:
        return "ERROR_BAD_PARAMETERS"
    return None


def image_bytes(method: Method, fields: Fields) -> tuple[bytes | None, str | None]:
    """The uploaded image (``base64`` body or ``post`` multipart ``file``), or an error code."""
    if method.name == "base64":
        body = fields.get("body").strip()
        if body.startswith("data:") and "," in body:
            body = body.split(",", 1)[1]
        if not body:
            return None, "ERROR_ZERO_CAPTCHA_FILESIZE"
        try:
            return base64.b64decode(body, validate=False), None
        except (binascii.Error, ValueError):
            return None, "ERROR_UPLOAD"
    upload = fields.files.get("file")
    if upload is None:
        return None, "ERROR_ZERO_CAPTCHA_FILESIZE"
    ext = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else ""
    if ext and ext not in IMAGE_EXTENSIONS:
        return None, "ERROR_WRONG_FILE_EXTENSION"
    return upload.data, None


def check_image(data: bytes, min_bytes: int, max_bytes: int, check_type: bool) -> str | None:
    if len(data) < min_bytes or not data:
        return "ERROR_ZERO_CAPTCHA_FILESIZE"
    if len(data) > max_bytes:
        return "ERROR_TOO_BIG_CAPTCHA_FILESIZE"
    if check_type and not data.startswith(_MAGIC):
        return "ERROR_IMAGE_TYPE_NOT_SUPPORTED"
    return None


# --- answers -----------------------------------------------------------------------------------
def _stream(seed: int, n: int, size: int) -> bytes:
    return hashlib.shake_256(f"solver|{seed}|{n}".encode()).digest(size)


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def answer_for(method: Method, seed: int, n: int, cells: bool = False) -> str:
    """The unique answer of task number ``n`` (deterministic from the seed). Structured answers are
    JSON strings, as the API puts them in ``request``."""
    raw = _stream(seed, n, 48)
    if method.answer == "text" and not cells:
        letters = "abcdefghjkmnpqrstuvwxyz"
        return "".join(letters[b % len(letters)] for b in raw[:5]) + _b36(n)
    if method.answer == "cells" or cells:
        picked = sorted({1 + b % 9 for b in raw[:3]})
        return orjson.dumps(picked).decode()
    tok = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if method.answer == "geetest":
        return orjson.dumps({"challenge": tok[:32], "validate": tok[32:64].ljust(32, "0"),
                             "seccode": tok[32:64].ljust(32, "0") + "|jordan"}).decode()
    if method.answer == "lemin":
        return orjson.dumps({"answer": "0xaxakx0xaxa" + tok[:20], "challenge_uuid": tok[20:56]}).decode()
    return method.prefix + tok
