"""Effects that act below HTTP, on the real socket: hang, reset, partial body; and telling whether
the client is still there (a delay that outlives it ends early)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from typing import Callable

from mocks.base.http import Request, head


def client_gone(request: Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def peer_closed(request: Request) -> bool:
    """Has the client closed (FIN or RST) in a way the event loop has not seen yet? A late answer's
    timer and its client's timeout fire together: the loop runs the timer before it polls the socket,
    so the FIN already there is not yet ``client_gone``. One non-blocking ``MSG_PEEK`` (on a dup of
    the fd: uvloop's socket object cannot read) tells. For late answers only."""
    if client_gone(request):
        return True
    sock = request.transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        with socket.socket(fileno=os.dup(sock.fileno())) as peek:
            return peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False   # open, nothing sent: still waiting for its answer
    except OSError:
        return True    # reset


GONE_POLL_S = 0.05  # how often a delay looks whether its client is still connected


async def sleep_unless_gone(request: Request, seconds: float) -> bool:
    """Sleep ``seconds``, ending early when the client closes the connection. True: it is still there."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not client_gone(request):
        left = end - loop.time()
        if left <= 0:
            return True
        await asyncio.sleep(min(GONE_POLL_S, left))
    return False


async def hang(request: Request, limit_s: float) -> float:
    """Send nothing until the client gives up (or ``limit_s`` passes). Returns seconds hung."""
    start = time.monotonic()
    while not client_gone(request) and time.monotonic() - start < limit_s:
        await asyncio.sleep(0.02)
    return time.monotonic() - start


UNREAD_WINDOW_S = 0.5  # a reset this soon after a late answer: the client gave up as it arrived


def on_unread(request: Request, unread: Callable[[], None], within_s: float = UNREAD_WINDOW_S) -> None:
    """Call ``unread()`` if, within ``within_s`` of now, the connection ends in a way that shows the
    client never read the answer just written. Its timeout fired as the answer went out:
    - it closes with the answer unread in its buffer: the kernel sends RST, not FIN;
    - it had closed (FIN) a moment before the answer arrived: its kernel answers the data with RST,
      which leaves an error (EPIPE) on our socket behind the FIN.
    A client that read the answer closes with a plain FIN, or keeps the connection (its next request
    ends the watch). For late answers only."""
    if client_gone(request):
        return
    watch = getattr(request.transport.get_protocol(), "watch_unread", None)
    if watch is not None:
        watch(unread, within_s)


def reset(request: Request) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), the way a crashed peer or LB does."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


def partial_length(body: bytes, keep: int | bool | None) -> int:
    """How many bytes of ``body`` a ``partial_body`` effect sends (``true``: half; never all of it)."""
    return len(body) // 2 if keep is True or keep is None else max(0, min(int(keep), max(len(body) - 1, 0)))


async def partial(request: Request, status: int, content_type: str, headers: dict[str, str],
                  body: bytes, n: int) -> None:
    """Announce the full Content-Length, send only the first ``n`` bytes of the body, then close.
    Raises ``ConnectionError`` when the client is gone before the bytes are written."""
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client is gone")
    transport.write(head(status, content_type, headers, len(body)) + body[:n])
    await asyncio.sleep(0.005)  # let the bytes leave before the FIN
    transport.close()
