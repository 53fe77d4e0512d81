"""Plain-text values read as fields, so that a ``where`` on ``body.request`` matches a plain-text
reply as well as a JSON one. A dotted path that runs into a string reads it with the reader its
service registered (``register_text_reader``; e.g. 2captcha's ``OK|123`` is ``{"status": 1,
"request": "123"}``), else as a JSON object, else as a form (``a=1&b=2``)."""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl

#: service → ``reader(text, event) -> fields or None`` (None: not a text it knows)
TextReader = Callable[[str, Mapping[str, Any]], "dict[str, Any] | None"]
READERS: dict[str, TextReader] = {}


def register_text_reader(service: str, reader: TextReader) -> None:
    READERS[service] = reader


def text_fields(text: str, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fields a plain-text value stands for (None: it reads as none)."""
    reader = READERS.get(str(event.get("service") or ""))
    fields = reader(text, event) if reader is not None else None
    if fields is not None:
        return fields
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
    if "=" in stripped and not any(c.isspace() for c in stripped):
        pairs = parse_qsl(stripped, keep_blank_values=True)
        if pairs:
            return dict(pairs)
    return None
