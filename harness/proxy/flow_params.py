"""What a mock would call a request: its ``action`` and ``params``, computed from raw HTTP parts.

Used by ``POST /decide`` only when the host runs no mock of the proxied service (live mode against a
service the host does not mock); otherwise the mock's own ``parse`` decides, exactly. A cheap
approximation of the mocks' parsers, so rules written for a mock (``match.action``,
``match.params``) select the same requests:

- ``captcha``: ``/`` → action = ``X-TC-Action`` header (``(none)`` if missing), params = query (GET)
  or the JSON body object (POST); ``/ticket`` → ``ticket``; ``/TCaptcha.js`` → ``TCaptcha.js``;
- ``solver``: ``in.php`` / ``res.php`` / ``site.submit``; params = query + form fields (urlencoded,
  multipart, or a JSON object; the body wins); file parts as ``{"filename", "size"}``;
- ``chat``: ``/v4/<servicename>/<command>`` → ``<servicename>/<command>``; params = the JSON body's
  top-level fields + query (the query wins);
- anything else: action = the path without leading ``/``, params = query + form or JSON fields.
"""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl

BODY_LIMIT = 1_048_576  # larger bodies are not parsed for params


def _form(body: bytes, content_type: str) -> dict[str, Any]:
    ctype = content_type.split(";", 1)[0].strip().lower()
    if not body or len(body) > BODY_LIMIT:
        return {}
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if ctype == "multipart/form-data":
        msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1", "replace")
                                                  + b"\r\n\r\n" + body)
        out: dict[str, Any] = {}
        if msg.is_multipart():
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if not name:
                    continue
                if part.get_filename():
                    out[name] = {"filename": part.get_filename(), "size": len(part.get_payload(decode=True) or b"")}
                else:
                    payload = part.get_payload(decode=True) or b""
                    out[name] = payload.decode("utf-8", "replace")
        return out
    return {}


def _json_object(body: bytes) -> dict[str, Any]:
    if not body or len(body) > BODY_LIMIT:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def action_and_params(service: str | None, method: str, path: str, query: Iterable[tuple[str, str]],
                      headers: Mapping[str, str], body: bytes) -> tuple[str, dict[str, Any]]:
    """``path`` without the query string; ``headers`` looked up case-insensitively by the caller's type."""
    content_type = _header(headers, "content-type")
    ctype = content_type.split(";", 1)[0].strip().lower()
    params: dict[str, Any] = dict(query)
    clean = "/" + path.lstrip("/")
    if service == "captcha":
        if clean.lower() == "/tcaptcha.js":
            return "TCaptcha.js", params
        if clean == "/ticket":
            return "ticket", {**params, **(_form(body, content_type) or _json_object(body))}
        action = _header(headers, "x-tc-action").strip() or "(none)"
        return action, (params if method.upper() == "GET" else _json_object(body))
    if service == "solver":
        action = {"/in.php": "in.php", "/res.php": "res.php", "/site/submit": "site.submit"}.get(clean, "not_found")
        params.update(_json_object(body) if ctype == "application/json" else _form(body, content_type))
        return action, params
    if service == "chat":
        parts = [p for p in clean.split("/") if p]
        action = "/".join(parts[1:3]) if len(parts) == 3 and parts[0] == "v4" else "not_found"
        return action, {**_json_object(body), **params}
    action = clean.strip("/") or "root"
    params.update(_json_object(body) if ctype == "application/json" else _form(body, content_type))
    return action, params


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if k.lower() == name:
                return v
        return ""
    return value
