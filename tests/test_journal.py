import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest
import requests

from harness.journal import Event, Journal, JournalCorrupt, kinds, read_events
from harness.journal.reader import torn_tail
from harness.verdict.base import Facts
from harness.verdict.evaluate import parsed_expectations
from mocks.solver.events import SOLUTION


def test_concurrent_tasks_and_threads_lose_nothing(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path, strict=False)  # free-form events: the writer, not the vocabulary

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
    journal = Journal(tmp_path / "j.jsonl", strict=False)
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
    j = Journal(sys.argv[1], strict=False)
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


# --- the declared vocabulary (harness/journal/kinds.py, mocks/<svc>/events.py) --------------------
def test_strict_writer_refuses_undeclared_kind_and_field_and_names_them(tmp_path):
    with Journal(tmp_path / "j.jsonl", strict=True) as j:
        with pytest.raises(kinds.UndeclaredEvent, match=r"kind 'reqest' is not declared"):
            j.write({"kind": "reqest", "service": "captcha"})
        with pytest.raises(kinds.UndeclaredEvent, match=r"journal event 'request': undeclared field\(s\) colour"):
            j.write({"kind": "request", "service": "captcha", "colour": "red"})
        with pytest.raises(kinds.UndeclaredEvent, match=r"'solution': undeclared field\(s\) tokn"):  # a service's kind
            j.write({"kind": "solution", "task": "1", "tokn": "x"})
        assert j.seq == 0  # a refused event takes no sequence number
        j.write({"kind": "solution", "task": "1", "token": "x", "source": "api"})  # partial, declared: fine
        j.write({"kind": "step", "step": "reset", "seq": 99, "ts": 1.0, "t": 2.0})  # the writer's own keys
    assert [e.kind for e in read_events(tmp_path / "j.jsonl")] == ["solution", "step"]


def test_lenient_writer_takes_anything(tmp_path):
    with Journal(tmp_path / "j.jsonl", strict=False) as j:
        j.write({"kind": "reqest", "colour": "red"})
        assert j.problem({"kind": "reqest"}) is None
    assert read_events(tmp_path / "j.jsonl")[0]["colour"] == "red"


def test_strict_mode_comes_from_the_environment(tmp_path, monkeypatch):
    assert kinds.strict_from_env() and Journal(tmp_path / "a.jsonl").strict  # tests/conftest.py turns it on
    monkeypatch.setenv(kinds.STRICT_ENV, "0")
    assert not kinds.strict_from_env() and not Journal(tmp_path / "b.jsonl").strict


def test_builders_check_required_and_declared_fields():
    assert kinds.STRICT
    event = kinds.RULE_REMOVED.event(rule="r1")
    assert event == {"kind": "rule_removed", "rule": "r1"}
    with pytest.raises(kinds.UndeclaredEvent, match=r"'rule_added': missing required field\(s\) spec"):
        kinds.RULE_ADDED.event(rule="r1")
    with pytest.raises(kinds.UndeclaredEvent, match=r"'rule_removed': undeclared field\(s\) why"):
        kinds.RULE_REMOVED.event(rule="r1", why="x")
    assert kinds.RULE_ADDED.partial(rule="r1") == {"kind": "rule_added", "rule": "r1"}  # tests' hand-built events
    with pytest.raises(kinds.UndeclaredEvent, match="why"):
        kinds.RULE_ADDED.partial(rule="r1", why="x")
    with pytest.raises(kinds.UndeclaredEvent, match="'nope' is not declared"):
        kinds.make("nope")


def test_a_kind_is_declared_once():
    again = kinds.declare("rules_cleared", (), (), kinds.RULES_CLEARED.doc)  # same: a re-import, harmless
    assert again is kinds.RULES_CLEARED and again.module == "harness.journal.kinds"
    with pytest.raises(ValueError, match="'rules_cleared' declared twice"):
        kinds.declare("rules_cleared", ("why",))


def test_every_service_declares_its_kinds_and_the_docs_list_them_all():
    names = [k.name for k in kinds.declared()]
    assert len(names) == len(set(names))
    assert {"request", "response", "driver", "step", "proxy.flow", "solution", "solution_use", "message",
            "message_refused", "rate_alarm", "webhook_answer", "captcha.ticket"} <= set(names)
    doc = (Path(__file__).parent.parent / "docs" / "journal.md").read_text()
    assert kinds.table() in doc, "docs/journal.md is out of date: regenerate its table (see there)"


def test_a_partial_body_is_journaled_with_the_status_it_began_with(echo_host):
    """The fault outcome's extra fields (here ``status``) fill the declared fields; they once collided."""
    control, echo = echo_host.host.urls["control"], echo_host.host.urls["echo"]
    assert requests.post(control + "/rules", json=[{"effect": {"partial_body": 10}}], timeout=5).status_code == 201
    with pytest.raises(requests.RequestException):
        requests.get(echo + "/x", timeout=5).content
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not [e for e in read_events(echo_host.host.journal.read_since(0))
                                               if e.kind == "response"]:
        time.sleep(0.05)
    response = [e for e in read_events(echo_host.host.journal.read_since(0)) if e.kind == "response"][-1]
    assert response["outcome"] == "partial" and response["status"] == 200 and response["sent_bytes"] == 10


def test_events_posted_to_the_control_api_are_checked_in_strict_mode(echo_host):
    url = echo_host.host.urls["control"] + "/journal"
    r = requests.post(url, json=[{"kind": "driver", "n": 1}, {"kind": "driver", "colour": "red"}], timeout=5)
    assert r.status_code == 400 and "events[1]: journal event 'driver': undeclared field(s) colour" in r.text
    assert requests.post(url, json={"kind": "nope"}, timeout=5).status_code == 400
    assert requests.post(url, json={"kind": "driver", "n": 1}, timeout=5).status_code == 201
    kinds_written = [e.kind for e in read_events(echo_host.host.journal.read_since(0))]
    assert kinds_written.count("driver") == 1  # a refused batch is written not at all


def test_readers_ask_for_declared_kinds_only():
    facts = Facts([Event.from_dict(SOLUTION.partial(seq=1, task="1"))])
    assert [e["task"] for e in facts.of("solution")] == ["1"] == [e["task"] for e in facts.of(SOLUTION)]
    with pytest.raises(kinds.UndeclaredEvent, match="'solutions' is not declared"):
        facts.of("solutions")  # a renamed kind: an error, never "no events"
    parsed_expectations([{"journal_count": {"where": {"kind": "message", "to": "u1", "body.0.MsgType": "x"}}},
                         {"journal_count": {"where": {"kind": {"glob": "proxy.*"}, "anything": 1}}}])
    with pytest.raises(ValueError, match="kind 'mesage' is not declared"):
        parsed_expectations([{"journal_count": {"where": {"kind": "mesage"}}}])
    with pytest.raises(ValueError, match=r"'message': undeclared field\(s\) too"):
        parsed_expectations([{"journal_count": {"where": {"kind": "message", "too": "u1"}}}])


def test_a_kind_declared_outside_the_harness_is_checked_too_but_not_documented(tmp_path):
    toy = kinds.declare("toy.ping", ("n",), ("note",), "a test's own kind")
    assert toy.module == __name__
    with Journal(tmp_path / "j.jsonl", strict=True) as j:
        j.write(toy.event(n=1))
        with pytest.raises(kinds.UndeclaredEvent, match="'toy.ping': undeclared field"):
            j.write({"kind": "toy.ping", "n": 2, "colour": "red"})
    assert "toy.ping" not in kinds.table() and toy in kinds.declared()
