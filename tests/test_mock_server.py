"""The mocks' HTTP/1.1 server (mocks/base/server.py) on real sockets: framing, keep-alive, limits, and
the promise that an answer's events are in the journal file before the client can read the answer."""

import asyncio
import gzip
import json
import socket
import threading
import time

import pytest
import requests

from harness.journal import read_events
from mocks.base.http import render
from mocks.base.server import HttpServer


def _port(ht):
    return int(ht.host.urls["echo"].rsplit(":", 1)[1])


def _exchange(port, data, *, until_close=True, timeout=5.0):
    """Send ``data`` raw; read until the server closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not until_close and b"\r\n\r\n" in b"".join(chunks):
                    break
        except socket.timeout:
            pass
    return b"".join(chunks)


def _answers(raw):
    """Split a byte stream of answers with Content-Length into (status line, headers, body) triples."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
        n = int(headers.get(b"content-length", b"0"))
        out.append((lines[0], headers, rest[:n]))
        raw = rest[n:]
    return out


def test_pipelined_requests_are_answered_in_order_on_one_connection(echo_host):
    reqs = b"".join(b"GET /p%d?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (i, i) for i in range(5))
    raw = _exchange(_port(echo_host), reqs + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answers = _answers(raw)
    assert [json.loads(body)["echo"].get("n") for _, _, body in answers] == ["0", "1", "2", "3", "4", None]
    assert answers[-1][1][b"connection"] == b"close"


def test_expect_100_continue_gets_the_interim_answer_first(echo_host):
    with socket.create_connection(("127.0.0.1", _port(echo_host)), timeout=5) as s:
        s.sendall(b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 7\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"a=1&b=2")
        answer = _answers(s.recv(65536))[0]
    assert json.loads(answer[2])["echo"] == {"a": "1", "b": "2"}


def test_chunked_and_gzip_bodies_are_read(echo_host):
    url = echo_host.host.urls["echo"]
    chunks = iter([b"a=1", b"&b=", b"2"])
    r = requests.post(url + "/chunked", data=chunks, timeout=5,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.json()["echo"] == {"a": "1", "b": "2"}
    r = requests.post(url + "/gz", data=gzip.compress(b"c=3"), timeout=5,
                      headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"})
    assert r.json()["echo"] == {"c": "3"}


def test_http10_closes_unless_asked_to_keep_alive_and_head_has_no_body(echo_host):
    port = _port(echo_host)
    (status, headers, body), = _answers(_exchange(port, b"GET /one HTTP/1.0\r\n\r\n"))
    assert status.startswith(b"HTTP/1.1 200") and b"connection" not in headers or headers[b"connection"] == b"close"
    raw = _exchange(port, b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                          b"GET /b HTTP/1.0\r\n\r\n")
    assert [json.loads(b)["greeting"] for _, _, b in _answers(raw)] == ["hello", "hello"]
    raw = _exchange(port, b"HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: " in head and rest == b""


@pytest.mark.parametrize("request_bytes, why", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"Status line is too long"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", b"is too long"),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n", b"Too many header"),
    (b"GARBAGE\r\n\r\n", b""),
])
def test_refused_framing_is_a_400_and_a_close_and_the_server_keeps_serving(echo_host, request_bytes, why):
    raw = _exchange(_port(echo_host), request_bytes)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request") and why in raw
    assert requests.get(echo_host.host.urls["echo"] + "/after", timeout=5).status_code == 200
    assert not [e for e in read_events(echo_host.host.journal.read_since(0)) if e.kind == "request"
                and e["path"] != "/after"]  # nothing it refused reached the pipeline


def test_every_answer_is_in_the_journal_file_before_its_client_reads_it(echo_host):
    """Answers go out in groups after one journal write: a client reading its answer finds the
    response event already in the file, also with many clients at once."""
    url, path = echo_host.host.urls["echo"], echo_host.host.journal.path
    missing, lock = [], threading.Lock()

    def client(k):
        with requests.Session() as s:
            for i in range(20):
                tag = f"c{k}-{i}"
                assert s.get(f"{url}/j?tag={tag}", timeout=5).json()["echo"]["tag"] == tag
                with open(path, "rb") as f:
                    journal = f.read()
                if f'"tag":"{tag}"'.encode() not in journal or journal.count(f'"tag":"{tag}"'.encode()) < 2:
                    with lock:
                        missing.append(tag)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not missing
    events = read_events(echo_host.host.journal.read_since(0))
    assert len([e for e in events if e.kind == "response" and e["outcome"] == "delivered"]) == 160


def test_an_unknown_expect_is_a_417_and_a_close(echo_host):
    raw = _exchange(_port(echo_host), b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: banana\r\n\r\n{}")
    assert raw.startswith(b"HTTP/1.1 417 Expectation Failed") and b"Unknown Expect: banana" in raw
    assert b"Connection: close" in raw
    assert not [e for e in read_events(echo_host.host.journal.read_since(0)) if e.kind == "request"]


def test_idle_keep_alive_connections_are_closed_and_busy_ones_are_not():
    """A connection with nothing in flight is closed after the idle timeout (aiohttp closes after 75 s);
    one whose answer is still being made is not, however long that takes."""
    async def handler(request):
        if request.path == "/slow":
            await asyncio.sleep(1.2)
        return render(200, "text/plain", {}, b"ok", request)

    async def get(path):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        head = await asyncio.wait_for(reader.readuntil(b"ok"), 5)
        return reader, writer, head

    async def closed_after(reader):
        t0 = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        return time.monotonic() - t0

    async def main():
        nonlocal port
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        server = HttpServer("t", handler, idle_timeout_s=0.4)
        server.start(sock)
        try:
            fast, slow = await asyncio.gather(get("/fast"), get("/slow"))  # the slow one waits 1.2 s, 3 sweeps
            assert fast[2].startswith(b"HTTP/1.1 200") and slow[2].startswith(b"HTTP/1.1 200")
            assert fast[0].at_eof() or await closed_after(fast[0]) < 0.5   # long idle by now: closed
            waited = await closed_after(slow[0])                            # idle from its answer on
            assert 0.3 <= waited <= 1.5, waited
        finally:
            await server.stop()

    port = 0
    asyncio.run(main())
