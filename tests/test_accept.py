"""``harness/accept.py``: out of file descriptors, a listener stops accepting for a moment (the pending
connections wait in the listen queue) and then goes on, on either event loop; nothing is lost."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

import pytest
from aiohttp import web

from harness import accept, loops


class RefusingOnce(socket.socket):
    """A listening socket whose first ``accept`` fails as a process out of file descriptors does."""

    refused = False

    def accept(self):  # type: ignore[override]
        if not self.refused:
            self.refused = True
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


async def answer(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def first_answer() -> tuple[bytes, float]:
    app = web.Application()
    app.router.add_get("/", answer)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    sock = RefusingOnce(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        await accept.BatchAcceptSite(runner, sock).start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), 10)
        waited = loop.time() - started
        writer.close()
        return line, waited
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_out_of_file_descriptors_pauses_accepting_then_goes_on(monkeypatch, caplog, loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    monkeypatch.setenv("HARNESS_LOOP", loop)
    monkeypatch.setattr(accept, "RETRY_AFTER_S", 0.3)
    with caplog.at_level(logging.WARNING, logger="harness.accept"):
        line, waited = loops.run(first_answer())
    assert line.startswith(b"HTTP/1.1 200"), line
    assert waited >= 0.25, waited  # accepted on the retry, not at once
    assert [r.getMessage() for r in caplog.records if "Too many open files" in r.getMessage()], caplog.text
