"""Solutions seen on a mitm link (config ``use_on_mitm_links``): a use of a solution observed as any
HTTP request the integration sends through a link with mitmproxy — to a third-party site, its own
backend, anything — that carries a token the solver produced, wherever it is: a query or form field,
a JSON value at any depth, a header (``Authorization: Bearer <token>`` too), or the raw body text.

The mitmproxy addon hands every proxied request to the control API (``POST /decide``), which shows
it to the host's mocks (``observe_proxied``); the solver mock looks the request's words up in its
book of answers and journals one ``solution_seen`` per token found. Requests to the mock's own
stand-in site are left to it (its ``site.submit`` already is the use).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, unquote_plus

# tokens the mock produces are URL-safe base64 (with a method prefix) or short letter/digit words;
# the lookup is exact, so a generous word pattern only costs dictionary probes
WORD = re.compile(r"[A-Za-z0-9_\-.~+/=:|]{4,}")
BODY_LIMIT = 1_048_576  # larger bodies are not searched


def _strings(value: Any) -> Iterable[str]:
    """Every string (and number, as text) in a JSON value, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


def _candidates(text: str) -> Iterable[str]:
    """A value itself, and the words in it (``Bearer <token>``, ``token=<t>;path=/`` …)."""
    text = text.strip()
    if text:
        yield text
        yield from WORD.findall(text)


def places(target: str, headers: Iterable[tuple[str, str]], body: bytes) -> Iterable[tuple[str, str]]:
    """``(where, value)`` for every value of a raw request a token may hide in."""
    path, _, query = target.partition("?")
    for _, v in parse_qsl(query, keep_blank_values=True):
        yield "query", v
    yield "query", unquote_plus(path)
    for _, v in headers:
        yield "header", v
    if not body or len(body) > BODY_LIMIT:
        return
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, (dict, list)):
        for v in _strings(data):
            yield "json", v
        return
    fields = parse_qsl(text, keep_blank_values=True) if "=" in text and "\n" not in text.strip() else []
    for _, v in fields:
        yield "form", v
    yield "body", text


def find_tokens(answers: Mapping[str, Any], target: str, headers: Iterable[tuple[str, str]],
                body: bytes) -> dict[str, str]:
    """Token → where it was first found, for the known ``answers`` the request carries."""
    found: dict[str, str] = {}
    if not answers:
        return found
    for where, value in places(target, headers, body):
        for word in _candidates(value):
            if word in answers and word not in found:
                found[word] = where
    return found


def in_raw_request(answers: Mapping[str, Any], raw: Mapping[str, Any]) -> tuple[str, str, dict[str, str]]:
    """``(method, path, {token: where})`` for a raw request as the proxies send it (``method``,
    ``path`` with the query, ``headers`` as pairs, ``body_b64``)."""
    target = str(raw.get("path") or "/")
    headers = [(str(k), str(v)) for k, v in raw.get("headers") or []]
    try:
        body = base64.b64decode(raw.get("body_b64") or "")
    except ValueError:
        body = b""
    return str(raw.get("method") or "GET").upper(), target, find_tokens(answers, target, headers, body)
