"""A lean HTTP/1.1 client for plain-http pingbacks: keep-alive pool on asyncio protocols, no
middleware, no cookie jar, no decompression. On this project's 2-core machines it costs about a
third of the CPU of an aiohttp ``ClientSession`` request, which is what lets the solver mock push
thousands of pingbacks a second. https URLs and JSON bodies go through aiohttp instead
(``mocks/solver/sender.py``).

Handles responses with Content-Length, chunked transfer-encoding, or a body delimited by close;
skips 1xx interim answers; honours ``Connection: close``; retries once on a fresh connection when a
reused keep-alive connection turns out to be dead before any byte of the answer arrived.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass

MAX_BODY = 1 << 20


class ConnectFailed(Exception):
    """Could not connect (refused, unreachable …): the caller journals it as ``refused``."""


class Incomplete(Exception):
    """The connection closed or broke before a complete answer."""


@dataclass
class Answer:
    status: int
    body: bytes


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.got_bytes = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.buf += data
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def _more(self) -> None:
        """Wait for more bytes (or close)."""
        if self.closed:
            raise Incomplete("connection closed before the answer was complete")
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter
        self.waiter = None

    async def _until(self, marker: bytes) -> int:
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                return i
            if self.closed:
                raise Incomplete("connection closed before the answer was complete")
            if len(self.buf) > MAX_BODY:
                raise Incomplete("answer too large")
            await self._more()

    async def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if self.closed:
                raise Incomplete("connection closed before the answer was complete")
            await self._more()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def read_answer(self) -> tuple[Answer, bool]:
        """Read one response. Returns it and whether the connection can be reused."""
        while True:
            end = await self._until(b"\r\n\r\n")
            head = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[:end + 4]
            lines = head.split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise Incomplete(f"bad status line {lines[0][:60]!r}")
            status = int(parts[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                continue  # interim answer (100 Continue …)
            break
        keep = parts[0] != "HTTP/1.0" and "close" not in headers.get("connection", "").lower()
        if status in (204, 304):
            return Answer(status, b""), keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                i = await self._until(b"\r\n")
                size_text = bytes(self.buf[:i]).split(b";", 1)[0].strip()
                del self.buf[:i + 2]
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise Incomplete("bad chunk size") from None
                if size == 0:
                    while True:  # trailers, up to the empty line
                        j = await self._until(b"\r\n")
                        line = bytes(self.buf[:j])
                        del self.buf[:j + 2]
                        if not line:
                            break
                    return Answer(status, bytes(body)), keep
                body += await self._exactly(size)
                await self._exactly(2)
                if len(body) > MAX_BODY:
                    raise Incomplete("answer too large")
        length = headers.get("content-length")
        if length is not None and length.isdigit():
            n = int(length)
            if n > MAX_BODY:
                raise Incomplete("answer too large")
            return Answer(status, await self._exactly(n)), keep
        while not self.closed:  # delimited by close
            if len(self.buf) > MAX_BODY:
                raise Incomplete("answer too large")
            await self._more()
        return Answer(status, bytes(self.buf)), False


class LeanClient:
    def __init__(self, limit: int = 256, user_agent: str = "chaos-harness-solver"):
        self._idle: dict[tuple[str, int], collections.deque[_Conn]] = collections.defaultdict(collections.deque)
        self._slots = asyncio.Semaphore(limit)
        self._all: set[_Conn] = set()
        self.user_agent = user_agent

    async def _connect(self, host: str, port: int) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Conn, host, port)
        except OSError as e:
            raise ConnectFailed(f"Cannot connect to host {host}:{port} [{e.strerror or e}]") from None
        self._all.add(conn)
        return conn

    def _idle_conn(self, key: tuple[str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed and not conn.buf:
                return conn
            conn.close()
            self._all.discard(conn)
        return None

    async def request(self, method: str, host: str, port: int, target: str, body: bytes | None = None,
                      content_type: str | None = None, headers: dict[str, str] | None = None) -> Answer:
        """One request; raises ConnectFailed, Incomplete, OSError. Cancel it for a timeout."""
        host_header = host if port == 80 else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]:{port}"
        head = [f"{method} {target} HTTP/1.1", f"Host: {host_header}", f"User-Agent: {self.user_agent}",
                "Accept: */*"]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body or b'')}")
            if content_type:
                head.append(f"Content-Type: {content_type}")
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b"")
        key = (host, port)
        async with self._slots:
            conn = self._idle_conn(key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(host, port)
            try:
                try:
                    assert conn.transport is not None
                    conn.transport.write(payload)
                    answer, keep = await conn.read_answer()
                except (Incomplete, OSError):
                    if not reused or conn.got_bytes:
                        raise
                    conn.close()  # a dead keep-alive connection: once more on a fresh one
                    self._all.discard(conn)
                    conn = await self._connect(host, port)
                    assert conn.transport is not None
                    conn.transport.write(payload)
                    answer, keep = await conn.read_answer()
            except BaseException:
                conn.close()
                self._all.discard(conn)
                raise
            conn.got_bytes = False
            if keep and not conn.closed:
                self._idle[key].append(conn)
            else:
                conn.close()
                self._all.discard(conn)
            return answer

    def close(self) -> None:
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()
