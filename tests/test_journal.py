import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import orjson
import pytest

from harness.journal import Journal, JournalCorrupt, read_events
from harness.journal.reader import torn_tail


def test_concurrent_tasks_and_threads_lose_nothing(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path)

    async def producer(k: int) -> None:
        for i in range(1000):
            journal.write({"kind": "request", "service": "t", "producer": k, "i": i})
            if i % 100 == 0:
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(producer(k) for k in range(40)))
        await asyncio.gather(*(asyncio.to_thread(lambda k=k: [journal.write({"kind": "step", "t2": k, "i": i})
                                                               for i in range(1000)]) for k in range(10)))
    asyncio.run(main())
    journal.close()
    events = read_events(path)
    assert len(events) == 50_000
    assert [e.seq for e in events] == list(range(1, 50_001))
    per_producer = {}
    for e in events:
        if e.kind == "request":
            per_producer.setdefault(e["producer"], []).append(e["i"])
    assert all(v == list(range(1000)) for v in per_producer.values()) and len(per_producer) == 40


def test_read_since_uses_index(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    for i in range(3000):
        journal.write({"kind": "step", "i": i})
    for since in (0, 1, 1023, 1024, 1025, 2999, 3000):
        seqs = [e.seq for e in read_events(journal.read_since(since))]
        assert seqs == list(range(since + 1, 3001))
    assert [e.seq for e in read_events(journal.read_since(10, limit=3))] == [11, 12, 13]


def test_incomplete_last_line_is_reported(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"seq":1,"ts":0,"t":0,"kind":"step"}\n{"seq":2,"ts"')
    with pytest.raises(JournalCorrupt, match=":2: incomplete last line"):
        read_events(path, strict=True)
    assert [e.seq for e in read_events(path)] == [1]  # the torn tail of a killed write is skipped
    path.write_bytes(b'{"seq":1,"ts":0,"t":0,"kind":"step"}\n{"seq":2,"ts"\n{"seq":3}\n')
    with pytest.raises(JournalCorrupt, match=":2: unparsable event"):
        read_events(path)  # a broken line in the middle is corruption, never skipped


WRITER = textwrap.dedent("""
    import sys
    from harness.journal import Journal
    j = Journal(sys.argv[1])
    i = 0
    while True:
        i += 1
        j.write({"kind": "request", "service": "captcha", "i": i, "pad": "x" * (i % 700)})
        if i == 2000:
            print("ready", flush=True)
""")


def test_sigkill_mid_stream_leaves_only_complete_lines(tmp_path):
    path = tmp_path / "j.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    data = path.read_bytes()
    complete, tail = data[: data.rfind(b"\n") + 1], torn_tail(data)
    events = read_events(path)
    assert len(events) > 2000
    assert [e["i"] for e in events] == list(range(1, len(events) + 1))
    assert all(orjson.loads(line) for line in complete.splitlines())   # every complete line parses
    # at most the one event being written at the kill is cut short, and it is the next one in order
    assert tail == b"" or (b"\n" not in tail and tail.startswith(b'{"seq":%d,' % (len(events) + 1)))
    assert os.path.getsize(path) == len(data)
