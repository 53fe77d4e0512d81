"""What a mock would call a request: its ``action`` and ``params``, computed from raw HTTP parts.

The mitmproxy addon runs in another process and asks the control API for a decision with these
values, so rules written for a mock (``match.action``, ``match.params``) select the same requests at
the proxy. Kept cheap and dependency-free (the addon imports it):

- ``captcha``: action = ``X-TC-Action`` header; params = the JSON body object;
- ``solver``: action = ``in.php`` / ``res.php`` (last path segment); params = query + form fields
  (urlencoded or multipart text fields; file parts are recorded by name only);
- ``chat``: action = ``<servicename>/<command>`` from ``/v4/<servicename>/<command>``; params = query
  + the JSON body's top-level fields;
- anything else (e.g. a live upstream of another kind): action = the path without leading ``/``,
  params = query + form or JSON object fields.
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
                    out[name] = f"<file {part.get_filename()}>"
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
    params: dict[str, Any] = dict(query)
    clean = "/" + path.lstrip("/")
    if service == "captcha":
        action = _header(headers, "x-tc-action") or "unknown"
        return action, _json_object(body)
    if service == "solver":
        action = clean.rstrip("/").rsplit("/", 1)[-1] or "root"
        params.update(_form(body, content_type))
        return action, params
    if service == "chat":
        parts = [p for p in clean.split("/") if p]
        action = "/".join(parts[1:3]) if len(parts) >= 3 and parts[0] == "v4" else (clean.strip("/") or "root")
        params.update(_json_object(body))
        return action, params
    action = clean.strip("/") or "root"
    if content_type.split(";", 1)[0].strip().lower() == "application/json":
        params.update(_json_object(body))
    else:
        params.update(_form(body, content_type))
    return action, params


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if k.lower() == name:
                return v
        return ""
    return value
