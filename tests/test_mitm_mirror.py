"""The mitmproxy addon decides on its own mirror of the run's ``mitm`` rules and journals in batches:
the mirror decides exactly as the host's engine would (same seed, same order of calls, same
decisions, also across rule changes), rule changes reach it before the next flow, a fault is
journaled before the client sees it, and nothing queued is lost when mitmdump stops."""

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from harness.faults import Applier, RuleEngine
from harness.host import HostThread, MockHost
from harness.journal import read_events
from harness.proxy.addon_journal import JournalSender
from harness.proxy.mitm import MitmProxy, MitmRoute
from harness.proxy.rule_mirror import MirrorReader, RuleMirror
from tests.echo_service import EchoMock

LINK = "integration->echo"
RULES = [
    {"id": "p", "match": {"link": LINK, "action": {"glob": "a*"}}, "effect": {"status": 503},
     "schedule": {"probability": 0.4}},
    {"id": "e", "match": {"link": LINK}, "effect": {"drop_response": True}, "schedule": {"every": 3, "times": 4}},
    {"id": "w", "match": {"link": LINK, "params": {"k": "v"}}, "effect": {"reset": True},
     "schedule": {"window": {"start": 0, "end": 3600}}},
    {"id": "mock-only", "effect": {"status": 500}},  # no link: the mock's, never mirrored
]
CALLS = [("echo", f"a{i % 4}" if i % 3 else "b", {"k": "v"} if i % 5 == 0 else {}) for i in range(60)]


def _decisions(engine, calls):
    out = []
    for service, action, params in calls:
        d = engine.decide(service, action, params, link=LINK, ref="f", applier=Applier.MITM)
        out.append(d and (d.rule_id, d.n))
    return out


def _without_time(events):
    return [{k: v for k, v in e.items() if k != "t"} for e in events]


def test_the_addons_mirror_decides_exactly_as_the_hosts_engine_would(tmp_path):
    """The reference decides every call on the host's engine (as ``POST /decide`` did); the mirror gets
    the rules through the files, also when they change halfway (a rule added, one replaced)."""
    ref_events = []
    reference = RuleEngine(seed=7, record=ref_events.append)
    host = MockHost(services={}, run_dir=str(tmp_path), seed=7)
    try:
        mirror = RuleMirror(host)
        mirrored_events = []
        reader = MirrorReader(RuleEngine(record=mirrored_events.append), mirror.rules_path, mirror.version_path)
        for engine in (reference, host.engine):
            engine.add(RULES)
        reader.refresh()
        got = _decisions(reader.engine, CALLS[:30])
        assert got == _decisions(reference, CALLS[:30]) and any(got) and None in got
        changes = [{"id": "n", "match": {"link": LINK}, "effect": {"status": 429}, "schedule": {"after": 2}},
                   {**RULES[0], "schedule": {"probability": 0.9}}]  # "p" replaced: its counts start again
        for engine in (reference, host.engine):
            engine.add(changes)
            engine.remove("w")
        reader.refresh()
        assert _decisions(reader.engine, CALLS[30:]) == _decisions(reference, CALLS[30:])
        decided = [e for e in ref_events if e["kind"] == "decision"]
        assert _without_time(mirrored_events) == _without_time(decided)
        assert {e["rule"] for e in decided} == {"p", "e", "w", "n"}
        assert reader.time_scale == host.ctx.time_scale and reader.hang_limit_s == host.ctx.hang_limit_s
    finally:
        host.journal.close()


def test_the_mirror_follows_the_run_clock_and_keeps_the_counts_of_unchanged_rules(tmp_path):
    host = MockHost(services={}, run_dir=str(tmp_path), seed=3)
    try:
        mirror = RuleMirror(host)
        reader = MirrorReader(RuleEngine(), mirror.rules_path, mirror.version_path)
        host.engine.add({"id": "once", "match": {"link": LINK}, "effect": {"status": 503},
                         "schedule": {"times": 1}})
        version = reader.loaded
        reader.refresh()
        assert reader.loaded > version
        assert _decisions(reader.engine, CALLS[:2]) == [("once", 1), None]
        host.engine.add({"match": {"link": "other"}, "effect": {"status": 502}})  # another rule: no reset
        reader.refresh()
        assert _decisions(reader.engine, CALLS[:1]) == [None]
        host.engine.started = time.monotonic() - 100  # the runner sets the run clock's start
        reader.refresh()
        assert reader.engine.started == host.engine.started and 99 < reader.engine.elapsed() < 110
        host.engine.add({"id": "once", "match": {"link": LINK}, "effect": {"status": 503},
                         "schedule": {"times": 1}})  # replaced: counts from zero again
        host.engine.clear()
        host.engine.add({"id": "once", "match": {"link": LINK}, "effect": {"status": 503},
                         "schedule": {"times": 1}})
        reader.refresh()
        assert _decisions(reader.engine, CALLS[:2]) == [("once", 1), None]
        assert [r["id"] for r in host.engine.list()] == ["once"]
    finally:
        host.journal.close()


# --- the journal sender ---------------------------------------------------------------------------
def _sender(fail_first=0, refuse=False):
    sent, calls = [], {"n": 0}

    async def post(batch):
        calls["n"] += 1
        await asyncio.sleep(0.005)
        if refuse:
            raise ValueError("400 bad event")
        if calls["n"] <= fail_first:
            raise ConnectionError("control API busy")
        sent.extend(batch)
    return JournalSender(post, batch_max=7, retry_s=0.001), sent, calls


def test_the_sender_keeps_the_order_and_close_sends_what_is_left():
    async def go():
        sender, sent, calls = _sender()
        sender.start()
        for i in range(50):
            sender.add({"i": i})
            if i % 10 == 0:
                await asyncio.sleep(0)  # the background task takes what is queued
        sender.add({"i": 50})
        await sender.flush()  # a faulted flow: everything so far is written when this returns
        assert [e["i"] for e in sent] == list(range(51))
        for i in range(51, 80):
            sender.add({"i": i})
        await sender.close()
        return sent, calls["n"], sender.lost
    sent, posts, lost = asyncio.run(go())
    assert [e["i"] for e in sent] == list(range(80)) and lost == 0
    assert posts < 80  # batched


def test_the_sender_retries_a_batch_the_host_could_not_take_and_gives_up_a_refused_one():
    async def go(**kw):
        sender, sent, calls = _sender(**kw)
        for i in range(3):
            sender.add({"i": i})
        await sender.flush()
        return [e["i"] for e in sent], calls["n"], sender.lost
    assert asyncio.run(go(fail_first=2)) == ([0, 1, 2], 3, 0)
    assert asyncio.run(go(refuse=True)) == ([], 1, 3)


# --- with mitmdump ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("mirror")
    with HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(run_dir), seed=5) as ht:
        mitm = MitmProxy([MitmRoute(LINK, "echo", ht.host.urls["echo"])], ht.host.urls["control"],
                         run_dir=str(run_dir), hang_limit_s=2)
        mitm.start()
        try:
            yield ht, mitm
        finally:
            mitm.stop()


def _flows(ht, since):
    return [e for e in read_events(ht.host.journal.read_since(since)) if e.kind == "proxy.flow"]


def test_a_rule_change_reaches_the_very_next_flow_and_a_fault_is_journaled_before_the_client_sees_it(env):
    ht, mitm = env
    control, url = ht.host.urls["control"], mitm.urls[LINK]
    since = ht.host.journal.seq
    rule = {"id": "drop", "match": {"link": LINK, "action": "x"}, "effect": {"drop_response": True},
            "schedule": {"times": 1}}
    try:
        for _ in range(2):  # added, then replaced with the same id: it fires once each time
            assert requests.post(control + "/rules", json=rule, timeout=5).status_code == 201
            with pytest.raises(requests.ConnectionError):
                requests.get(url + "/x", timeout=5)
            # read at once: the dropped flow and its decision are already in the journal
            assert _flows(ht, since)[-1]["outcome"] == "dropped"
            assert requests.get(url + "/x", timeout=5).status_code == 200
        (listed,) = requests.get(control + "/rules", timeout=5).json()["rules"]
        assert (listed["matched"], listed["fired"]) == (2, 1)  # the addon's decisions, counted by the host
        assert requests.delete(control + "/rules/drop", timeout=5).status_code == 200
        assert requests.get(url + "/x", timeout=5).status_code == 200  # removed: not applied
    finally:
        requests.delete(control + "/rules", timeout=5)
    decisions = [(e["rule"], e["n"], e["fired"]) for e in read_events(ht.host.journal.read_since(since))
                 if e.kind == "decision"]
    assert decisions == [("drop", 1, True), ("drop", 2, False), ("drop", 1, True), ("drop", 2, False)]


def test_the_addons_routes_refuse_bad_input_in_one_line(env):
    ht, _ = env
    c = ht.host.urls["control"]
    raw = {"method": "GET", "path": "/x", "headers": [], "body_b64": ""}
    bad = [("/decide/journal", [{"kind": "request", "service": "echo"}], "events[0].kind: expected one of decision, proxy.flow"),
           ("/decide/journal", [{"kind": "decision", "nope": 1}], "events[0]: "),
           ("/decide/reply", [], "body: expected a JSON object"),
           ("/decide/reply", {"request": raw, "effect": {"status": 99}}, "effect: "),
           ("/decide/reply", {"request": {"headers": "x"}, "effect": {"status": 503}},
            "request.headers: expected a list of [name, value] pairs")]
    for path, body, error in bad:
        r = requests.post(c + path, json=body, timeout=5)
        assert r.status_code == 400 and r.json()["error"].startswith(error), (path, r.text)
    ok = requests.post(c + "/decide/reply", json={"service": "echo", "request": raw, "effect": {"error": "Boom"}},
                       timeout=5).json()["reply"]
    assert ok["status"] == 200 and ok["content_type"] == "application/json"  # the echo mock's own fault shape


class _Upstream(BaseHTTPRequestHandler):
    """An upstream that does not run on the host's loop (live mode)."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


def test_flows_still_queued_when_mitmdump_stops_are_journaled(tmp_path):
    """The control API is held busy while clients are answered: their flows wait in the addon; stopping
    mitmdump sends them (``done``) once the control API answers again."""
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    paths = [f"/q?c={c}&i={i}" for c in range(4) for i in range(10)]

    async def busy():
        time.sleep(3)

    try:
        with HostThread(services={}, run_dir=str(tmp_path)) as ht:
            route = MitmRoute("integration->live", None, f"http://127.0.0.1:{upstream.server_port}")
            with MitmProxy([route], ht.host.urls["control"], run_dir=str(tmp_path)) as mitm:
                url = mitm.urls["integration->live"]
                since = ht.host.journal.seq
                requests.get(url + "/first", timeout=5).raise_for_status()  # the rules are mirrored
                while not _flows(ht, since):
                    time.sleep(0.01)
                blocker = threading.Thread(target=ht.call, args=(busy,))
                blocker.start()
                time.sleep(0.2)

                def client(c):
                    session = requests.Session()
                    for p in paths[c * 10:(c + 1) * 10]:
                        session.get(url + p, timeout=5).raise_for_status()
                clients = [threading.Thread(target=client, args=(c,)) for c in range(4)]
                for t in clients:
                    t.start()
                for t in clients:
                    t.join()
                held = len(_flows(ht, since)) - 1
            blocker.join()
            journaled = sorted(f["path"] for f in _flows(ht, since))[1:]  # without /first
    finally:
        upstream.shutdown()
        upstream.server_close()
    assert held < len(paths)  # answered before they were journaled: batched, not on the client's path
    assert journaled == sorted(paths)
