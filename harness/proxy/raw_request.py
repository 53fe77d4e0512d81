"""What a mock would call a raw HTTP request: its ``action`` and ``params``.

Used by the mitmproxy addon for every flow (it decides in its own process, without the mock), and by
``POST /decide`` when the host runs no mock of the proxied service (live mode against a service the
host does not mock; otherwise the mock's own ``parse`` decides there). Each service
gives a cheap approximation of its mock's parser in its registry entry (``parse_raw_request``), so
rules written for a mock (``match.action``, ``match.params``) select the same requests. A service
without one (or no service) gets the generic reading: action = the path without leading ``/``
(``root`` for ``/``), params = query + form or JSON fields. The helpers here read bodies for them.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl

from mocks.base.http import Upload, multipart
from mocks.registry import raw_request_parser

BODY_LIMIT = 1_048_576  # larger bodies are not parsed for params


def form_fields(body: bytes, content_type: str) -> dict[str, Any]:
    """Fields of an urlencoded or multipart form (file parts as ``{"filename", "size"}``)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if not body or len(body) > BODY_LIMIT:
        return {}
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if ctype == "multipart/form-data":
        try:  # the mocks' own reading; a body the mock would refuse (400) has no fields to match
            fields = multipart(body, content_type)
        except ValueError:
            return {}
        return {k: {"filename": v.filename, "size": len(v.data)} if isinstance(v, Upload) else v
                for k, v in fields.items()}
    return {}


def json_object(body: bytes) -> dict[str, Any]:
    """The body's top-level JSON object ({} for anything else)."""
    if not body or len(body) > BODY_LIMIT:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def body_fields(body: bytes, content_type: str) -> dict[str, Any]:
    """A JSON object's fields for ``application/json``, else the form's."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    return json_object(body) if ctype == "application/json" else form_fields(body, content_type)


def header(headers: Mapping[str, str], name: str) -> str:
    """A header's value by lower-case ``name``, looked up case-insensitively ("" if missing)."""
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if k.lower() == name:
                return v
        return ""
    return value


def action_and_params(service: str | None, method: str, path: str, query: Iterable[tuple[str, str]],
                      headers: Mapping[str, str], body: bytes) -> tuple[str, dict[str, Any]]:
    """``path`` without the query string; ``headers`` looked up case-insensitively by the caller's type."""
    params: dict[str, Any] = dict(query)
    clean = "/" + path.lstrip("/")
    parse = raw_request_parser(service)
    if parse is not None:
        return parse(method, clean, params, headers, body)
    params.update(body_fields(body, header(headers, "content-type")))
    return clean.strip("/") or "root", params
