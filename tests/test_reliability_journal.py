"""The journal never fails a write because of what a client sent: lone surrogates (header bytes that
are not UTF-8, which aiohttp decodes with surrogateescape) and integers beyond 64 bits are written escaped / as text, every line parses and
``seq`` stays gap-free (a failed write used to cost a 500 and a seq number)."""

import json
import socket

from harness.host import HostThread
from harness.journal import Journal, read_events


def test_unserialisable_values_are_written_not_dropped(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, strict=False) as j:  # free-form events: the writer, not the vocabulary
        seqs = [j.write({"kind": "a", "text": "\ud800", "\udcff": ["\udcfe"]}),
                j.write({"kind": "b", "n": 10**30, "m": [-(10**30)], "ok": 2**64 - 1}),
                j.write({"kind": "c"})]
    lines = path.read_bytes().splitlines()
    assert seqs == [1, 2, 3] and [json.loads(line)["seq"] for line in lines] == [1, 2, 3]
    a, b, _ = read_events(path)
    assert a["text"] == "\\ud800" and a["\\udcff"] == ["\\udcfe"]
    assert b["n"] == str(10**30) and b["m"] == [str(-(10**30))] and b["ok"] == 2**64 - 1


def test_a_non_utf8_header_sent_to_a_mock_is_journaled_not_a_500(tmp_path):
    """aiohttp decodes header bytes with surrogateescape: X-TC-Action \xe9 became the action '\udce9'."""
    with HostThread(services={"captcha": {}}, run_dir=str(tmp_path)) as ht:
        port = int(ht.host.urls["captcha"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-TC-Action: Describe\xe9\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
        assert b"InvalidAction" in answer
        events = read_events(ht.host.journal.read_since(0))
        assert [e for e in events if e.kind == "request" and e.action == "Describe\\udce9"]
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
