"""The two values a service protocol deals in: the parsed ``Call`` and the ``Reply`` to send."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # echoed client input: a lone surrogate (header bytes that were not UTF-8), a huge int
        from harness.journal.writer import _scrub
        return orjson.dumps(_scrub(obj))


@dataclass
class Call:
    """A request as the service protocol understands it."""

    action: str
    params: dict[str, Any]
    request: web.Request
    rid: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    data: Any = None  # what the journal records (parsed JSON or text)

    @classmethod
    def json(cls, obj: Any, status: int = 200, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> "Reply":
        return cls(status, _dumps(obj), content_type, dict(headers or {}), obj)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain",
             headers: dict[str, str] | None = None) -> "Reply":
        return cls(status, text.encode("utf-8", "backslashreplace"), content_type, dict(headers or {}), text)

    def to_response(self) -> web.Response:
        # Set Content-Type verbatim: some SDKs compare it exactly (Tencent's wants "application/json").
        headers = {"Content-Type": self.content_type, **self.headers}
        return web.Response(status=self.status, body=self.body, headers=headers)


class BadRequest(Exception):
    """Raised by a service's ``parse`` for input the real service would refuse; carries its answer."""

    def __init__(self, reply: Reply, action: str = "invalid"):
        super().__init__(action)
        self.reply = reply
        self.action = action
