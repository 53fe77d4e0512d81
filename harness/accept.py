"""An aiohttp site that accepts pending connections in batches, on whichever event loop runs it.

uvloop's libuv (1.46 and later) accepts one connection per loop iteration, and under load an iteration
of a busy mock takes tens of milliseconds: at 2000 connections its listen queue stayed full for the
whole run, about 30 connections got in per second, and a client waited seconds for its first answer
(docs/reliability.md, "connection bursts"). asyncio's own loop accepts up to ``backlog`` per wake-up.
``BatchAcceptSite`` does the accepting itself, as asyncio does, and hands each socket to the loop
(``connect_accepted_socket``): every pending connection gets in at the next wake-up, on either loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any, Callable

from aiohttp import web

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1.0  # out of file descriptors (or memory): stop accepting this long, as asyncio does


class Acceptor(asyncio.AbstractServer):
    """Accepts up to ``batch`` connections each time ``sock`` is readable; ``close()`` stops listening."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, factory: Callable[[], Any],
                 ssl_context: ssl.SSLContext | None, batch: int):
        self._loop, self._sock, self._factory, self._ssl, self._batch = loop, sock, factory, ssl_context, batch
        self._handing_over: set[asyncio.Task[Any]] = set()
        self._retry: asyncio.TimerHandle | None = None
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(self._batch):
            try:
                conn, _addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as e:  # EMFILE, ENFILE, ENOBUFS, ENOMEM: the pending ones wait in the queue
                log.warning("accepting on %s: %s; retrying in %.0f s", self._sock.getsockname(), e, RETRY_AFTER_S)
                self._loop.remove_reader(self._sock.fileno())
                self._retry = self._loop.call_later(RETRY_AFTER_S, self._resume)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn, ssl=self._ssl))
            self._handing_over.add(task)
            task.add_done_callback(self._handed_over)

    def _resume(self) -> None:
        self._retry = None
        if self._sock.fileno() != -1:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def _handed_over(self, task: asyncio.Task[Any]) -> None:
        self._handing_over.discard(task)
        if not task.cancelled() and task.exception() is not None:  # e.g. a failed TLS handshake
            log.debug("connection not set up: %s", task.exception())

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,) if self._sock.fileno() != -1 else ()

    def close(self) -> None:
        if self._sock.fileno() == -1:
            return
        self._loop.remove_reader(self._sock.fileno())
        if self._retry is not None:
            self._retry.cancel()
        self._sock.close()
        # connections being handed over are left to finish (a step each; a TLS handshake has its own
        # timeout): cancelling one that aiohttp already serves closes its transport under it

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._sock.fileno() != -1

    async def start_serving(self) -> None:
        pass  # serving from the start

    async def serve_forever(self) -> None:
        raise NotImplementedError("run the loop instead")

    async def wait_closed(self) -> None:
        if self._handing_over:
            await asyncio.wait(list(self._handing_over))


class BatchAcceptSite(web.BaseSite):
    """``web.SockSite`` for a bound, listening socket, with ``Acceptor`` instead of ``loop.create_server``:
    up to ``backlog`` connections accepted per wake-up. The socket's listen backlog is left as it is."""

    __slots__ = ("_sock", "_name")

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, *, ssl_context: ssl.SSLContext | None = None,
                 backlog: int = 128):
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self._name = f"{'https' if ssl_context else 'http'}://{f'[{host}]' if ':' in host else host}:{port}"

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        await super().start()
        assert self._runner.server is not None
        self._server = Acceptor(asyncio.get_running_loop(), self._sock, self._runner.server, self._ssl_context,
                                 self._backlog)
