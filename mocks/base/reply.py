"""The two values a service protocol deals in: the parsed ``Call`` and the ``Reply`` to send, and
``shape_reply``: the answer a response-shaping effect gives, at the mock and at the proxy alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import orjson

from harness.faults.rules import Effect
from harness.journal.writer import json_safe
from mocks.base.http import Request


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # echoed client input: a lone surrogate (header bytes that were not UTF-8), a huge int
        return orjson.dumps(json_safe(obj))


@dataclass
class Call:
    """A request as the service protocol understands it."""

    action: str
    params: dict[str, Any]
    request: Request
    rid: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    data: Any = None  # what the journal records (parsed JSON or text)
    refused: dict[str, Any] | None = None  # why the mock refused the request (journal only: check, expected, got, why)
    # a refusal that is the protocol's own answer (a ticket's CaptchaCode): journaled, not logged
    refusal_is_answer: bool = False

    @classmethod
    def json(cls, obj: Any, status: int = 200, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> "Reply":
        return cls(status, _dumps(obj), content_type, dict(headers or {}), obj)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain",
             headers: dict[str, str] | None = None) -> "Reply":
        return cls(status, text.encode("utf-8", "backslashreplace"), content_type, dict(headers or {}), text)


def refusal(check: str, expected: str, got: str, note: str = "", **more: str) -> dict[str, str]:
    """``Reply.refused``: which check refused a request, what the mock expected and what it got, the
    same as one line (``why``), and anything more that helps (a canonical request, a string to sign).
    Echoed client bytes that are not UTF-8 (lone surrogates) come out escaped, so the line can be
    logged and journaled anywhere."""
    expected, got = json_safe(expected), json_safe(got)  # both may echo the client's bytes (a Host header)
    line = f"{check}: expected {_short(expected)}, got {_short(got)}" + (f" — {note}" if note else "")
    return {"check": check, "expected": expected, "got": got, "why": line, **(json_safe(more) if more else {})}


def _short(value: str) -> str:
    return value if len(value) <= 40 else value[:12] + "…"


class BadRequest(Exception):
    """Raised by a service's ``parse`` for input the real service would refuse; carries its answer."""

    def __init__(self, reply: Reply, action: str = "invalid"):
        super().__init__(action)
        self.reply = reply
        self.action = action


FaultReply = Callable[[Effect, Call], Optional[Reply]]


def shape_reply(effect: Effect, call: Call, fault_reply: FaultReply | None = None) -> Reply:
    """The answer for an effect that shapes the response (``error``, ``captcha_code``, ``status``,
    ``body``, ``content_type``, ``headers``), the same wherever the rule applies.

    ``fault_reply`` (the service's) translates ``error`` / ``captcha_code`` into the protocol's own
    shape; without one (no mock of the service) or when it has none, ``error`` is a plain-text 500
    ``"<error>: <message>"``. Then ``status``, ``body`` (a string: text, or HTML when it starts with
    ``<``; anything else: JSON), ``content_type`` and ``headers`` override what that gave."""
    reply = None
    if fault_reply is not None and (effect.error is not None or effect.captcha_code is not None):
        reply = fault_reply(effect, call)
    if reply is None:
        reply = (Reply.text(effect.error + (f": {effect.message}" if effect.message else ""), status=500)
                 if effect.error is not None else Reply.text(""))
    if effect.status is not None:
        reply.status = effect.status
    if isinstance(effect.body, str):
        text = Reply.text(effect.body)
        reply.body, reply.data = text.body, text.data
        if effect.content_type is None and effect.body.lstrip().startswith("<"):
            reply.content_type = "text/html"
    elif effect.body is not None:
        reply.body, reply.data = _dumps(effect.body), effect.body
        reply.content_type = "application/json"
    if effect.content_type is not None:
        reply.content_type = effect.content_type
    reply.headers.update(effect.headers)
    return reply
