"""The lean keep-alive HTTP client the solver's pingbacks use, against hand-written raw servers."""

import asyncio

import pytest

from mocks.base.callbacks import Outbound, closed_port_url
from mocks.solver.lean_http import ConnectFailed, Incomplete, LeanClient
from mocks.solver.sender import PingbackSender


class RawServer:
    """Answers each request with the next canned reply; records request heads and bodies."""

    def __init__(self, replies, close_after=False):
        self.replies = list(replies)
        self.close_after = close_after
        self.requests = []
        self.connections = 0

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append((head.decode(), body))
                reply = self.replies.pop(0) if self.replies else b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"
                if reply == "hang":
                    await asyncio.sleep(1)
                    return
                writer.write(reply)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_content_length_chunked_close_delimited_and_interim():
    async def main():
        replies = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n",
            b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy",
        ]
        async with RawServer(replies) as srv:
            client = LeanClient()
            a = await client.request("GET", "127.0.0.1", srv.port, "/cb?id=1&code=x")
            b = await client.request("POST", "127.0.0.1", srv.port, "/cb", b"id=1&code=x",
                                     "application/x-www-form-urlencoded")
            c = await client.request("GET", "127.0.0.1", srv.port, "/cb")
            d = await client.request("GET", "127.0.0.1", srv.port, "/cb")  # after Connection: close → new conn
            client.close()
            assert (a.status, a.body) == (200, b"hello") and (b.status, b.body) == (201, b"abcde")
            assert (c.status, c.body) == (503, b"busy") and d.status == 200
            assert srv.connections == 2  # keep-alive reused until the server said close
            head, body = srv.requests[1]
            assert head.startswith("POST /cb HTTP/1.1\r\n") and "Content-Length: 11" in head and body == b"id=1&code=x"
            assert srv.requests[0][0].startswith("GET /cb?id=1&code=x HTTP/1.1\r\nHost: 127.0.0.1:")
        async with RawServer([b"HTTP/1.0 200 OK\r\n\r\nuntil close"], close_after=True) as srv:
            client = LeanClient()
            e = await client.request("GET", "127.0.0.1", srv.port, "/")
            client.close()
            assert e.body == b"until close"
    run(main())


def test_dead_keepalive_connection_is_retried_once_and_errors_surface():
    async def main():
        async with RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], close_after=True) as srv:
            client = LeanClient()
            await client.request("GET", "127.0.0.1", srv.port, "/")
            await asyncio.sleep(0.05)  # the server closed our idle connection meanwhile
            again = await client.request("GET", "127.0.0.1", srv.port, "/")
            assert again.status == 200 and srv.connections == 2
            client.close()
        async with RawServer([b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"],
                             close_after=True) as srv:
            client = LeanClient()
            with pytest.raises(Incomplete):
                await client.request("GET", "127.0.0.1", srv.port, "/")
            with pytest.raises(Incomplete):
                await client.request("GET", "127.0.0.1", srv.port, "/")
            client.close()
        port = int(closed_port_url().rsplit(":", 1)[1].split("/")[0])
        with pytest.raises(ConnectFailed):
            await LeanClient().request("GET", "127.0.0.1", port, "/")
    run(main())


class _Ctx:
    """Just enough of MockContext for a sender without rules."""

    time_scale = 1.0

    def __init__(self):
        self.events = []

        class Engine:
            def decide(self, *a, **k):
                return None
        self.engine = Engine()

    def record(self, event):
        self.events.append(event)
        return len(self.events)


def test_sender_outcomes_through_the_lean_client():
    async def main():
        ctx = _Ctx()
        sender = PingbackSender(ctx, "solver")
        async with RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
                              b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop", "hang"]) as srv:
            base = f"http://127.0.0.1:{srv.port}/pb?x=1"
            ok = await sender.send(Outbound("pingback", base, params={"id": "7", "code": "t ok"}, timeout_s=2))
            notfound = await sender.send(Outbound("pingback", base, params={"id": "8", "code": "t"}))
            hung = await sender.send(Outbound("pingback", base, method="POST", form={"id": "9", "code": "t"},
                                              timeout_s=0.3))
            refused = await sender.send(Outbound("pingback", closed_port_url("/pb"), params={"id": "1"}))
            bad = await sender.send(Outbound("pingback", "http://[broken/", params={"id": "1"}))
            await sender.close()
        assert [a[0].outcome for a in (ok, notfound, hung, refused, bad)] == \
            ["delivered", "http_error", "timeout", "refused", "error"]
        assert ok[0].body == "OK" and notfound[0].status == 404 and 250 <= hung[0].latency_ms < 2000
        assert srv.requests[0][0].startswith("GET /pb?x=1&id=7&code=t+ok HTTP/1.1")
        assert [e["outcome"] for e in ctx.events] == ["delivered", "http_error", "timeout", "refused", "error"]
    run(main())
