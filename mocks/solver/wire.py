"""The 2captcha-style wire format: reading ``in.php`` / ``res.php`` parameters (query, form,
multipart) and shaping the plain-text (``OK|…``, ``ERROR_…``) and ``json=1`` replies."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import orjson
from mocks.base import Reply
from mocks.base.http import BodyTooLarge, Request, Upload

NOT_READY = "CAPCHA_NOT_READY"  # sic: the real API spells it without the T
PLAIN = "text/plain; charset=utf-8"
JOURNAL_VALUE_LIMIT = 256      # image payloads (body, image_base64_N …) longer than this are summarised
JOURNAL_TEXT_LIMIT = 4096      # any other field (ids, token, pageurl …) only beyond this

#: Short descriptions sent as ``error_text`` when asked for (config ``error_text`` or a rule message).
ERROR_TEXTS = {
    "ERROR_WRONG_USER_KEY": "The key must be 32 characters long",
    "ERROR_KEY_DOES_NOT_EXIST": "The key does not exist",
    "ERROR_ZERO_BALANCE": "No free threads on your account",
    "ERROR_NO_SLOT_AVAILABLE": "No free slots, try again later",
    "ERROR_CAPTCHA_UNSOLVABLE": "The captcha could not be solved",
    "ERROR_WRONG_CAPTCHA_ID": "Unknown captcha id",
    "ERROR_WRONG_ID_FORMAT": "The captcha id must be a number",
    "ERROR_EMPTY_ACTION": "Missing action parameter",
    "ERROR_BAD_PARAMETERS": "Required parameters are missing or malformed",
    "ERROR_GOOGLEKEY": "sitekey is missing or malformed",
    "ERROR_PAGEURL": "pageurl is missing",
    "ERROR_ZERO_CAPTCHA_FILESIZE": "The image is smaller than 100 bytes",
    "ERROR_TOO_BIG_CAPTCHA_FILESIZE": "The image is larger than 1024 KB",
    "ERROR_WRONG_FILE_EXTENSION": "Unsupported image file extension",
    "ERROR_IMAGE_TYPE_NOT_SUPPORTED": "Unsupported image type",
    "ERROR_UPLOAD": "The image upload is malformed",
    "ERROR_SERVER_ERROR": "Transient server error",
    "IP_BANNED": "Your IP is banned after repeated bad keys",
}


@dataclass
class Fields:
    """What a request carried: string fields, uploaded files, and a JSON body if one was sent."""

    values: dict[str, str]
    files: dict[str, Upload]
    json_body: Any = None

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def journal_params(self) -> dict[str, Any]:
        """All fields for the journal and for rule matching; uploads and long values summarised."""
        out: dict[str, Any] = {}
        for k, v in self.values.items():
            limit = JOURNAL_VALUE_LIMIT if _is_image_field(k) else JOURNAL_TEXT_LIMIT
            out[k] = v if len(v) <= limit else {"chars": len(v)}
        for k, f in self.files.items():
            out[k] = {"filename": f.filename, "size": len(f.data)}
        return out


def _is_image_field(name: str) -> bool:
    return name in ("body", "imginstructions") or name.startswith("image")


class MalformedBody(Exception):
    pass


async def read_fields(request: Request) -> Fields:
    """Query string merged with the body (urlencoded, multipart, or JSON object); body wins."""
    values: dict[str, str] = {k: v for k, v in request.query.items()}
    files: dict[str, Upload] = {}
    json_body: Any = None
    if not request.body_exists:
        return Fields(values, files)
    ctype = request.content_type
    try:
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for k, v in request.form().items():
                if isinstance(v, str):
                    values[k] = v
                else:  # an uploaded file
                    files[k] = v
        elif ctype == "application/json":
            raw = await request.read()
            json_body = orjson.loads(raw) if raw.strip() else None
            if isinstance(json_body, dict):
                values.update({str(k): _text(v) for k, v in json_body.items()})
        else:  # no or odd content type: read it as a urlencoded form, like PHP would not, but harmlessly
            raw = await request.read()
            for k, v in urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
                values[k] = v
    except BodyTooLarge:
        raise
    except Exception as e:  # any malformed body (bad multipart, bad JSON, bad encoding) is the client's
        raise MalformedBody(f"{type(e).__name__}: {e}"[:200]) from None
    return Fields(values, files, json_body)


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "1" if v else "0"
    if v is None:
        return ""
    if isinstance(v, (int, float)):
        return str(v)
    return orjson.dumps(v).decode()


def wants_json(fields: Fields) -> bool:
    return fields.get("json").strip() in ("1", "true")


def ok(as_json: bool, request: Any, **extra: Any) -> Reply:
    if as_json:
        return Reply.json({"status": 1, "request": request, **extra})
    return Reply.text(f"OK|{request}", content_type=PLAIN)


def value(as_json: bool, request: Any) -> Reply:
    """A success answer without the ``OK|`` prefix in plain form (getbalance, report, bulk get)."""
    if as_json:
        return Reply.json({"status": 1, "request": request})
    return Reply.text(str(request), content_type=PLAIN)


def error(as_json: bool, code: str, *, text: str | None = None, with_text: bool = False,
          status: int = 200) -> Reply:
    if not as_json:
        return Reply.text(code, status=status, content_type=PLAIN)
    body: dict[str, Any] = {"status": 0, "request": code}
    if text is not None:
        body["error_text"] = text
    elif with_text and code in ERROR_TEXTS:
        body["error_text"] = ERROR_TEXTS[code]
    return Reply.json(body, status=status)


def not_ready(as_json: bool) -> Reply:
    return error(as_json, NOT_READY)
