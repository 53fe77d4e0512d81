#!/usr/bin/env python3
"""The Python ceiling for `make bench`: a bare aiohttp app (the same aiohttp, the same event loop as
the mocks) answering every request with the same pre-built bytes, nothing else: no parsing, no
signature check, no rule engine, no journal.

    python bench/aiohttp_ceiling.py PORT [--journal PATH] [--raw]

``--journal``: also append one orjson line per request to PATH with one write(2) (what a journal
costs at the least). ``--raw``: no aiohttp at all — an asyncio protocol on the same event loop that
parses each request with ``httptools`` (the parser uvicorn uses) and writes the same bytes: the
ceiling of a Python HTTP/1.1 server without aiohttp's request and response objects. Prints one
line ``ready`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import orjson
from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import loops  # noqa: E402

BODY = orjson.dumps({"Response": {"CaptchaCode": 1, "CaptchaMsg": "OK", "EvilLevel": 0, "GetCaptchaTime": 0,
                                  "RequestId": "5b8e4c5e-0d5c-4b5f-9b1e-3f4f5e6a7b8c"}})


def app(journal: str | None) -> web.Application:
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644) if journal else -1
    seq = 0

    async def plain(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    async def journaled(request: web.Request) -> web.Response:
        nonlocal seq
        seq += 1
        os.write(fd, orjson.dumps({"seq": seq, "ts": time.time(), "path": request.path}) + b"\n")
        return web.Response(body=BODY, content_type="application/json")

    a = web.Application()
    a.router.add_route("*", "/{tail:.*}", journaled if fd >= 0 else plain)
    return a


def raw_protocol() -> type:
    import httptools  # what the mocks serve on (mocks/base/server.py)
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(BODY), BODY)

    class Raw(loops.asyncio.Protocol):
        def connection_made(self, transport: loops.asyncio.BaseTransport) -> None:
            self.transport, self.parser = transport, httptools.HttpRequestParser(self)

        def on_message_complete(self) -> None:
            self.transport.write(answer)

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

    return Raw


async def serve_raw(port: int) -> None:
    await loops.asyncio.get_running_loop().create_server(raw_protocol(), "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    await loops.asyncio.Event().wait()


async def serve(port: int, journal: str | None) -> None:
    runner = web.AppRunner(app(journal), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await loops.asyncio.Event().wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--journal")
    ap.add_argument("--raw", action="store_true", help="an asyncio protocol with httptools, no aiohttp")
    args = ap.parse_args()
    try:
        loops.run(serve_raw(args.port) if args.raw else serve(args.port, args.journal))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
