"""HTTP/1.1 as the mocks see it: the ``Request`` a service parses (method, path, query, headers, the
whole body already read and decoded) and ``render``, the bytes of an answer.

The mocks serve on ``mocks/base/server.py`` (``httptools`` under an asyncio protocol), not on aiohttp:
aiohttp's request and response objects alone cost more than half of a mock's time per request
(docs/scale.md). What a service reads here keeps aiohttp's names (``path``, ``raw_path``, ``query``,
``headers``, ``content_type``, ``remote``, ``host``, ``scheme``, ``read()``), so a service reads a
request the same way on either.
"""

from __future__ import annotations

import email.utils
import http
import time
import zlib
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl, unquote

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

BODY_LIMIT = 4 * 1024 * 1024  # a larger body (as sent, or decoded) is refused: BodyTooLarge


class BodyError(ValueError):
    """The body cannot be read: a Content-Encoding it does not match."""


class BodyTooLarge(Exception):
    """The body is larger than ``BODY_LIMIT`` (the real services refuse such uploads too)."""


@dataclass
class Upload:
    """A file part of a multipart form."""

    filename: str
    data: bytes


_EMPTY_QUERY: MultiDictProxy[str] = MultiDictProxy(MultiDict())


class Request:
    """One received request. ``body`` is complete (decoded from gzip / deflate) when a service sees it;
    ``body_error`` / ``too_large`` say why it is not. ``late``, ``answer`` and ``undelivered`` are the
    pipeline's notes."""

    __slots__ = ("method", "raw_path", "path", "query_string", "headers", "body", "body_error", "too_large",
                 "version", "keep_alive", "transport", "remote", "scheme", "_query", "late", "answer", "sockname",
                 "undelivered")

    def __init__(self, method: str, target: str, headers: CIMultiDictProxy[str], body: bytes, *,
                 transport: Any = None, remote: str | None = "127.0.0.1", scheme: str = "http",
                 version: str = "1.1", keep_alive: bool = True, too_large: bool = False,
                 sockname: Any = None):
        self.method = method
        self.raw_path = target
        path, _, self.query_string = target.partition("?")
        self.path = unquote(path) if "%" in path else path
        self.headers = headers
        self.version, self.keep_alive = version, keep_alive
        self.transport, self.remote, self.scheme, self.sockname = transport, remote, scheme, sockname
        self._query: MultiDictProxy[str] | None = None
        self.late = False
        self.answer: tuple[str, str, str | None] | None = None  # journaled as delivered: (rid, action, rule)
        self.undelivered: Any = None  # called when the client left before the answer could be written
        self.too_large = too_large
        self.body_error: BodyError | None = None
        self.body = b"" if too_large else _decoded(body, headers.get("Content-Encoding"), self)

    @classmethod
    def detached(cls, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> "Request":
        """A request that arrived elsewhere (through a proxy), for a service's ``parse``."""
        return cls(method, target, CIMultiDictProxy(CIMultiDict(headers)), body, too_large=len(body) > BODY_LIMIT)

    @property
    def query(self) -> MultiDictProxy[str]:
        if self._query is None:
            self._query = (MultiDictProxy(MultiDict(parse_qsl(self.query_string, keep_blank_values=True)))
                           if self.query_string else _EMPTY_QUERY)
        return self._query

    @property
    def content_type(self) -> str:
        """The media type of Content-Type, lower case, without parameters (aiohttp's default when absent)."""
        raw = self.headers.get("Content-Type")
        if not raw:
            return "application/octet-stream"
        return raw.partition(";")[0].strip().lower()

    @property
    def host(self) -> str:
        host = self.headers.get("Host")
        if host is not None:
            return host
        name = self.sockname
        return f"{name[0]}:{name[1]}" if name else "localhost"

    @property
    def body_exists(self) -> bool:
        return bool(self.body) or self.too_large or self.body_error is not None

    can_read_body = body_exists

    async def read(self) -> bytes:
        return self.body_bytes()

    def body_bytes(self) -> bytes:
        if self.too_large:
            raise BodyTooLarge(f"the body is larger than {BODY_LIMIT} bytes")
        if self.body_error is not None:
            raise self.body_error
        return self.body

    def form(self) -> dict[str, str | Upload]:
        """The fields of an urlencoded or multipart body (files as ``Upload``); ``ValueError`` if malformed."""
        body = self.body_bytes()
        ctype = self.content_type
        if ctype == "multipart/form-data":
            return multipart(body, self.headers.get("Content-Type", ""))
        if not body:
            return {}
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))


def _decoded(body: bytes, encoding: str | None, request: Request) -> bytes:
    if not encoding or not body:
        return body
    enc = encoding.strip().lower()
    try:
        if enc in ("gzip", "x-gzip"):
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":  # zlib-wrapped, or (as some clients send it) raw
            d = zlib.decompressobj(zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS)
        else:
            return body  # identity, or one the mock does not know: the bytes as sent (as aiohttp does)
        out = d.decompress(body, BODY_LIMIT + 1)
        if len(out) > BODY_LIMIT:
            request.too_large = True
            return b""
        if not d.eof:
            raise zlib.error("incomplete stream")
        return out
    except zlib.error as e:
        request.body_error = BodyError(f"Can not decode content-encoding: {enc}: {e}")
        return b""


def multipart(body: bytes, content_type: str) -> dict[str, str | Upload]:
    """Fields of a ``multipart/form-data`` body; ``ValueError`` when it is not one."""
    if "boundary=" not in content_type:
        raise ValueError("multipart/form-data without a boundary")
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1", "replace")
                                              + b"\r\n\r\n" + body)
    if not msg.is_multipart() or msg.defects:
        raise ValueError(f"malformed multipart body: {msg.defects[0] if msg.defects else 'no parts'}")
    out: dict[str, str | Upload] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            out[str(name)] = Upload(filename, payload)
        else:
            charset = part.get_content_charset() or "utf-8"
            out[str(name)] = payload.decode(charset, "replace")
    return out


# --- answers ------------------------------------------------------------------------------------
_REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}
_date_cache: list[Any] = [0, b""]


def _date() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, email.utils.formatdate(now, usegmt=True).encode()
    return _date_cache[1]


def _header_bytes(value: str) -> bytes:
    value = str(value)
    if "\r" in value or "\n" in value:
        value = value.replace("\r", " ").replace("\n", " ")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace")


def head(status: int, content_type: str, headers: dict[str, str], length: int, *, close: bool = False,
         keep_alive_10: bool = False) -> bytes:
    """Status line and headers of an answer whose body is ``length`` bytes (``Content-Length``). A
    ``Content-Type`` in ``headers`` replaces ``content_type``; framing headers there are ignored."""
    extra = []
    for k, v in headers.items():
        lk = k.lower()
        if lk == "content-type":
            content_type = v
        elif lk not in _FRAMING:
            extra.append(b"%s: %s\r\n" % (_header_bytes(k), _header_bytes(v)))
    framing = b"" if status in (204, 304) or status < 200 else b"Content-Length: %d\r\n" % length
    if close:
        extra.append(b"Connection: close\r\n")
    elif keep_alive_10:
        extra.append(b"Connection: keep-alive\r\n")
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%sDate: %s\r\nServer: harness-mock\r\n%s\r\n" % (
        status, _REASONS.get(status, b"Unknown"), _header_bytes(content_type), framing, _date(), b"".join(extra))


_FRAMING = frozenset({"content-length", "transfer-encoding", "date", "server", "connection"})


def render(status: int, content_type: str, headers: dict[str, str], body: bytes, request: Request,
           close: bool = False) -> bytes:
    """The bytes of a whole answer to ``request`` (no body for HEAD; ``Connection`` as the request needs).
    An answer that closes the connection (``close``, or a ``Connection: close`` header) says so and
    clears ``request.keep_alive``: the server closes after writing it."""
    close = close or not request.keep_alive or bool(headers) and any(
        k.lower() == "connection" and v.strip().lower() == "close" for k, v in headers.items())
    request.keep_alive = not close
    data = head(status, content_type, headers, len(body), close=close,
                keep_alive_10=request.version == "1.0" and not close)
    return data if request.method == "HEAD" or status in (204, 304) or status < 200 else data + body
