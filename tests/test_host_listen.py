"""Every listener of a ``MockHost`` (each mock and the control API) really has a backlog of 1024:
aiohttp's ``SockSite`` calls ``listen()`` again with its own default (128) unless told otherwise.
``ss -ltn`` shows a listening socket's backlog in its Send-Q column, and the connections waiting to be
accepted in its Recv-Q: a burst of them is accepted at once, on uvloop too (harness/accept.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading

import pytest

from harness.host import BACKLOG, HostThread


def backlog_of(port: int) -> int:
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    (line,) = out.strip().splitlines()
    state, recv_q, send_q, *_ = line.split()
    assert state == "LISTEN"
    return int(send_q)


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_every_listener_has_a_backlog_of_1024(tmp_path):
    with HostThread(run_dir=str(tmp_path)) as ht:
        urls = ht.host.urls
        assert set(urls) >= {"captcha", "solver", "chat", "control"}
        backlogs = {name: backlog_of(int(url.rsplit(":", 1)[1])) for name, url in urls.items()}
        assert backlogs == {name: BACKLOG for name in urls} and BACKLOG == 1024, backlogs
        ht.call(ht.host.stop_service, "captcha")
        ht.call(ht.host.start_service, "captcha")  # a restarted mock listens anew: same backlog
        assert backlog_of(int(ht.host.urls["captcha"].rsplit(":", 1)[1])) == BACKLOG


def waiting_in_queue(port: int) -> int:
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return int(out.split()[1])  # Recv-Q of a listening socket: connections waiting to be accepted


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_burst_of_pending_connections_is_accepted_at_once(tmp_path, monkeypatch, loop):
    """uvloop's libuv accepts one connection per loop iteration: under load a burst of clients waited
    seconds in the listen queue (docs/reliability.md, connection bursts). The listeners accept every
    pending connection at the next wake-up. Here the host's loop is held while 300 clients connect and
    send a request (the kernel completes the handshakes and queues them); one round trip through the
    loop after it is released, none is left in the queue, and every request is answered."""
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    monkeypatch.setenv("HARNESS_LOOP", loop)
    with HostThread(run_dir=str(tmp_path), services={"captcha": {}}) as ht:
        port = int(ht.host.urls["captcha"].rsplit(":", 1)[1])
        held, release = threading.Event(), threading.Event()

        async def hold() -> None:
            held.set()
            release.wait(30)  # blocks the loop on purpose

        async def nothing() -> None:
            pass

        holder = threading.Thread(target=ht.call, args=(hold,))
        holder.start()
        clients: list[socket.socket] = []
        try:
            assert held.wait(10)
            for _ in range(300):
                c = socket.create_connection(("127.0.0.1", port), timeout=10)
                c.sendall(b"GET /TCaptcha.js HTTP/1.1\r\nHost: x\r\n\r\n")
                clients.append(c)
            assert waiting_in_queue(port) == 300
            release.set()
            holder.join(10)
            ht.call(nothing)
            assert waiting_in_queue(port) == 0
            assert all(c.recv(64).startswith(b"HTTP/1.1 200") for c in clients)
        finally:
            release.set()
            for c in clients:
                c.close()
