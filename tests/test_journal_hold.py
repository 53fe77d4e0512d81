"""Journal.hold: a mock's request is numbered at once and written with its answer, in one write(2)."""

import asyncio
import os
import threading
import time

import requests

from harness.host import HostThread
from harness.journal import Journal, kinds, read_events
from mocks.base import Call, Reply
from tests.echo_service import EchoMock


def lines(path):
    with open(path, "rb") as f:
        return f.read().splitlines()


def test_held_event_goes_out_with_the_next_one_in_one_write(tmp_path, monkeypatch):
    path = str(tmp_path / "j.jsonl")
    j = Journal(path)
    heard = []
    j.subscribe(lambda e: heard.append(e["seq"]))
    writes = []
    real_write = os.write
    monkeypatch.setattr("harness.journal.writer.os.write", lambda fd, data: writes.append(bytes(data)) or
                        real_write(fd, data))
    assert j.hold(kinds.STEP.event(step="a")) == 1
    assert lines(path) == [] and heard == [] and j.seq == 1
    assert j.write(kinds.STEP.event(step="b")) == 2
    assert len(writes) == 1 and writes[0].count(b"\n") == 2  # both lines, one write(2)
    assert [e.seq for e in read_events(b"".join(lines(path)[i] + b"\n" for i in range(2)))] == [1, 2]
    assert heard == [1, 2]


def test_read_since_and_close_flush_what_is_held(tmp_path):
    path = str(tmp_path / "j.jsonl")
    j = Journal(path)
    j.hold(kinds.STEP.event(step="a"))
    assert [e["step"] for e in read_events(j.read_since(0))] == ["a"]
    j.hold(kinds.STEP.event(step="b"))
    j.close()
    assert [e["step"] for e in read_events(b"\n".join(lines(path)) + b"\n")] == ["a", "b"]


def test_another_threads_write_comes_after_the_held_event(tmp_path):
    j = Journal(str(tmp_path / "j.jsonl"))
    j.hold(kinds.STEP.event(step="held"))
    t = threading.Thread(target=lambda: j.write(kinds.STEP.event(step="other")))
    t.start()
    t.join()
    assert [(e.seq, e["step"]) for e in read_events(j.read_since(0))] == [(1, "held"), (2, "other")]


class SlowMock(EchoMock):
    """Its handler awaits: the request it holds must not wait for the answer to be journaled."""

    async def handle(self, call: Call) -> Reply:
        await asyncio.sleep(0.6)
        return Reply.json({"slow": True})


def test_a_request_whose_handler_awaits_is_written_at_the_next_loop_turn(tmp_path):
    with HostThread(services={"echo": {}}, service_classes={"echo": SlowMock}, run_dir=str(tmp_path)) as ht:
        path = ht.host.journal.path
        done = []
        t = threading.Thread(target=lambda: done.append(requests.get(ht.host.urls["echo"] + "/x", timeout=5)))
        t.start()
        deadline = time.monotonic() + 0.5
        seen_before_answer = False
        while time.monotonic() < deadline:
            if any(b'"kind":"request"' in line for line in lines(path)):  # the file itself, not read_since
                seen_before_answer = not done
                break
            time.sleep(0.02)
        t.join()
        assert seen_before_answer and done[0].json() == {"slow": True}


def test_a_mock_writes_request_and_answer_in_one_write(echo_host, monkeypatch):
    writes = []
    real_write = os.write
    monkeypatch.setattr("harness.journal.writer.os.write", lambda fd, data: writes.append(bytes(data)) or
                        real_write(fd, data))
    assert requests.get(echo_host.host.urls["echo"] + "/hello", timeout=5).status_code == 200
    pair = [w for w in writes if b'"kind":"request"' in w]
    assert len(pair) == 1 and b'"kind":"response"' in pair[0] and pair[0].count(b"\n") == 2
