"""The mocks' HTTP/1.1 server: an asyncio protocol that parses with ``httptools`` (the parser uvicorn
uses) and hands each complete request to the mock's pipeline, one at a time per connection (pipelined
requests wait their turn, and are answered in order).

A handler returns the bytes to send, or ``None`` (or raises ``NoAnswer``) to close the connection
without an answer: a hang that ended, a reset, a partial body already written. Keep-alive, HTTP/1.0,
``Expect: 100-continue``, chunked bodies, gzip / deflate bodies, HEAD and TLS (the listener's
``ssl_context``) are handled here; a request the parser refuses gets ``400`` (an ``Expect`` other than
``100-continue``: ``417``) and a close, and one WARNING line, never a traceback. A connection idle for
``IDLE_TIMEOUT_S`` (no request in flight, no byte received) is closed, as aiohttp closes it.

The connection also watches, when asked (``watch_unread``), whether the client reset it soon after an
answer: the sign that it gave up as the answer arrived (``mocks/base/effects.py``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
from typing import Any, Awaitable, Callable

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from harness.accept import Acceptor
from mocks.base.http import BODY_LIMIT, Request, head, render

log = logging.getLogger("harness.mocks")

Handler = Callable[[Request], Awaitable["bytes | None"]]
PIPELINE_LIMIT = 32  # requests parsed ahead of their answer before the connection stops reading
LINE_LIMIT = 8190    # request target and each header field (aiohttp's limits): longer is refused with 400
HEADERS_LIMIT = 128  # header fields per request
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


IDLE_TIMEOUT_S = 75.0  # a connection with no request in flight and no byte for this long is closed (aiohttp's)


class _TooLong(Exception):
    """A request line or header beyond the limits: the parser stops, the client gets 400."""


class _Unexpected(Exception):
    """An ``Expect`` other than ``100-continue``: the parser stops, the client gets 417 (as aiohttp)."""


class NoAnswer(Exception):
    """Raised by a handler: close the connection without (more of) an answer."""


class HttpConnection(asyncio.Protocol):
    def __init__(self, server: "HttpServer"):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: collections.deque[Request] = collections.deque()
        self.task: asyncio.Task[None] | None = None
        self.remote: str | None = None
        self.sockname: Any = None
        self.scheme = "http"
        self.paused = False
        self._unread: tuple[Callable[[], None], float] | None = None
        self._url = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._body: list[bytes] = []
        self._size = 0
        self._too_large = False
        self.last_active = server.loop.time()

    # --- the connection ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if isinstance(peer, tuple) else None
        self.sockname = transport.get_extra_info("sockname")
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if isinstance(exc, ConnectionResetError):
            self._tell_unread()
        self.queue.clear()

    def eof_received(self) -> bool | None:
        if self._unread is not None:
            sock = self.transport.get_extra_info("socket") if self.transport is not None else None
            try:
                if sock is not None and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self._tell_unread()   # a reset came behind the FIN: our answer reached a closed socket
            except OSError:
                pass
        return None  # close: the client is done (a handler still running sees it gone)

    def data_received(self, data: bytes) -> None:
        self._unread = None  # the next request: the client was done with the last answer
        self.last_active = self.server.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # an Upgrade request is answered as a plain one; what follows it is not HTTP/1.1
        except httptools.HttpParserError as e:
            self._refuse(e)

    def _refuse(self, e: Exception) -> None:
        limit = e.__context__ if isinstance(e.__context__, (_TooLong, _Unexpected)) else None
        why = str(limit or e).strip().splitlines()[0] if str(limit or e).strip() else type(e).__name__
        status = 417 if isinstance(limit, _Unexpected) else 400
        log.warning("%s: bad HTTP request from %s: %s", self.server.name, self.remote, why)
        self.queue.clear()
        if self.transport is not None and not self.transport.is_closing():
            body = f"{status}, message:\n  {why}".encode("utf-8", "replace")
            self.transport.write(head(status, "text/plain; charset=utf-8", {}, len(body), close=True) + body)
            self.transport.close()

    # --- httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url, self._raw_headers, self._body, self._size, self._too_large = b"", [], [], 0, False

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > LINE_LIMIT:
            raise _TooLong(f"Status line is too long (more than {LINE_LIMIT} bytes)")

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(value) + len(name) > LINE_LIMIT:
            raise _TooLong(f"Header field {name[:40]!r} is too long (more than {LINE_LIMIT} bytes)")
        self._raw_headers.append((name, value))  # decoded once all are in

    def on_headers_complete(self) -> None:
        raw = self._raw_headers
        if len(raw) > HEADERS_LIMIT:
            raise _TooLong(f"Too many header fields (more than {HEADERS_LIMIT})")
        self._headers = headers = CIMultiDict(
            [(n.decode("latin-1"), v.decode("utf-8", "surrogateescape")) for n, v in raw])
        if "Expect" in headers:
            if headers["Expect"].strip().lower() != "100-continue":
                raise _Unexpected(f"Unknown Expect: {headers['Expect'][:100]}")
            if self.parser.get_http_version() == "1.1" and self.transport is not None:
                self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._size += len(body)
        if self._size > BODY_LIMIT:
            self._too_large, self._body = True, []
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(parser.get_method().decode("ascii", "replace"),
                          self._url.decode("utf-8", "surrogateescape"),
                          CIMultiDictProxy(self._headers), body,
                          transport=self.transport, remote=self.remote, scheme=self.scheme,
                          version=parser.get_http_version(), keep_alive=parser.should_keep_alive(),
                          too_large=self._too_large, sockname=self.sockname)
        self._body = []
        self.queue.append(request)
        if self.task is None:
            self._next()
        elif len(self.queue) >= PIPELINE_LIMIT and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    # --- answering -----------------------------------------------------------------------------
    def _next(self) -> None:
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = False
            self.transport.resume_reading()
        if not self.queue or self.transport is None or self.transport.is_closing():
            self.task = None
            self.last_active = self.server.loop.time()  # idle from here (the answer just went out)
            return
        self.task = self.server.loop.create_task(self._serve(self.queue.popleft()))

    async def _serve(self, request: Request) -> None:
        transport = self.transport
        assert transport is not None
        try:
            data = await self.server.handler(request)
        except (NoAnswer, asyncio.CancelledError):
            data = None
        except Exception:
            log.exception("%s: the handler failed on %s %s", self.server.name, request.method, request.path)
            data = render(500, "text/plain", {}, b"500 Internal Server Error", request, close=True)
        if data is None:
            transport.close()
            self.task = None
            return
        self.server.send_soon(self, request, data)  # the next request waits until this answer is out

    def deliver(self, request: Request, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            if request.undelivered is not None:
                request.undelivered(request)
            self.task = None
            return
        transport.write(data)
        if not request.keep_alive:  # asked by the client, or by the answer (``render``)
            transport.close()
        self._next()

    def watch_unread(self, unread: Callable[[], None], within_s: float) -> None:
        """Call ``unread()`` if the client resets the connection within ``within_s`` (and sends no
        further request first): the answer just written was never read."""
        self._unread = (unread, self.server.loop.time() + within_s)

    def _tell_unread(self) -> None:
        if self._unread is not None:
            unread, deadline = self._unread
            self._unread = None
            if self.server.loop.time() <= deadline:
                unread()

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.transport is not None:
            self.transport.close()


class HttpServer:
    """Listens on a bound socket (accepting in batches, ``harness/accept.py``) and serves ``handler``.

    Answers go out in groups: those ready in one turn of the event loop are written together at the
    start of the next, right after one call of ``commit`` (the journal's flush: one ``write(2)`` for
    every event of the group, each still in the file before its answer is sent). A connection whose
    client left in between calls its request's ``undelivered(request)``."""

    def __init__(self, name: str, handler: Handler, commit: Callable[[], None] = lambda: None,
                 idle_timeout_s: float = IDLE_TIMEOUT_S):
        self.name = name
        self.handler = handler
        self.commit = commit
        self.idle_timeout_s = idle_timeout_s
        self.connections: set[HttpConnection] = set()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._acceptor: Acceptor | None = None
        self._ready: list[tuple[HttpConnection, Request, bytes]] = []
        self._sweeper: asyncio.TimerHandle | None = None

    def send_soon(self, conn: HttpConnection, request: Request, data: bytes) -> None:
        if not self._ready:
            self.loop.call_soon(self._send_ready)
        self._ready.append((conn, request, data))

    def _send_ready(self) -> None:
        ready, self._ready = self._ready, []
        self.commit()
        for conn, request, data in ready:
            conn.deliver(request, data)

    def start(self, sock: socket.socket, ssl_context: ssl.SSLContext | None = None, backlog: int = 1024) -> None:
        self.loop = asyncio.get_running_loop()
        self._acceptor = Acceptor(self.loop, sock, lambda: HttpConnection(self), ssl_context, backlog)
        self._sweeper = self.loop.call_later(self._sweep_every(), self._close_idle)

    def _sweep_every(self) -> float:
        return min(self.idle_timeout_s / 2, 15.0)

    def _close_idle(self) -> None:
        """Close the keep-alive connections idle for ``idle_timeout_s``: no request being answered or
        waiting, no byte received (a request cut halfway counts as idle too)."""
        edge = self.loop.time() - self.idle_timeout_s
        for conn in [c for c in self.connections if c.task is None and not c.queue and c.last_active <= edge]:
            conn.close()
        self._sweeper = self.loop.call_later(self._sweep_every(), self._close_idle)

    async def stop(self) -> None:
        """Stop listening and close every connection (a handler still running is cancelled)."""
        if self._acceptor is not None:
            self._acceptor.close()
            self._acceptor = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        tasks = [c.task for c in self.connections if c.task is not None]
        for conn in list(self.connections):
            conn.close()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
