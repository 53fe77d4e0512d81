"""Every Toxiproxy toxic reachable from a fault rule, seen by real clients through the real server."""

import socket
import time

import pytest
import requests

from harness.host import HostThread
from harness.journal import read_events
from harness.proxy.toxiproxy_links import Links, cleanup_run
from harness.proxy.stack import ProxyStack
from harness.proxy.toxiproxy_server import ToxiproxyServer
from tests.echo_service import EchoMock

BIG = "x" * 60_000  # echoed back: a ~60 KB response


@pytest.fixture(scope="module")
def server():
    with ToxiproxyServer() as s:
        yield s


@pytest.fixture(scope="module")
def env(server, tmp_path_factory):
    """An echo mock behind one Toxiproxy link (integration->echo) plus a second link
    (integration->other) to the same mock; the toxic driver runs on the host's loop."""
    run_dir = tmp_path_factory.mktemp("tox")
    with HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(run_dir),
                    seed=3, hang_limit_s=5) as ht:
        stack = ProxyStack(ht.host, toxiproxy_url=server.url,
                           extra_links={"integration->other": ht.host.urls["echo"]})
        urls = ht.call(stack.start)
        try:
            yield ht, stack, urls
        finally:
            ht.call(stack.stop)


@pytest.fixture()
def tox(env):
    ht, stack, urls = env
    yield Tox(ht, stack, urls)
    requests.delete(ht.host.urls["control"] + "/rules", timeout=5)
    ht.call(stack.driver.sync)
    assert not stack.driver.applied and not stack.driver.down


class Tox:
    def __init__(self, ht, stack, urls):
        self.ht, self.stack, self.urls = ht, stack, urls
        self.url = urls["echo"]
        self.port = int(self.url.rsplit(":", 1)[1])

    def rule(self, effect, link="integration->echo", **more):
        r = requests.post(self.ht.host.urls["control"] + "/rules",
                          json={"match": {"link": link}, "effect": effect, **more}, timeout=5)
        assert r.status_code == 201, r.text
        self.ht.call(self.stack.driver.sync)
        return r.json()["ids"][0]

    def remove(self, rid):
        requests.delete(self.ht.host.urls["control"] + f"/rules/{rid}", timeout=5)
        self.ht.call(self.stack.driver.sync)

    def mark(self):
        return self.ht.host.journal.seq

    def events(self, kind, since=0):
        return [e for e in read_events(self.ht.host.journal.read_since(since)) if e.kind == kind]

    def toxics(self, link="integration->echo"):
        return self.stack.server.client.toxics(self.stack.links.get(link).proxy)

    def raw(self, path="/x", body=b"", timeout=5.0):
        """One HTTP/1.1 exchange on a raw socket: (chunks received with their arrival times, error)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        chunks, err = [], None
        try:
            head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n")
            s.sendall(head.encode() + body)
            t0 = time.monotonic()
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append((time.monotonic() - t0, data))
        except OSError as e:
            err = e
        finally:
            s.close()
        return chunks, err


def timed_get(url, **kw):
    t0 = time.monotonic()
    r = requests.get(url, timeout=10, **kw)
    return time.monotonic() - t0, r


def test_latency_with_jitter_delays_the_answer_and_goes_away(tox):
    base, r = timed_get(tox.url + "/hello")
    assert r.json()["greeting"] == "hello"
    mark = tox.mark()
    rid = tox.rule({"toxic": "latency", "attributes": {"latency": 400, "jitter": 50}})
    assert tox.toxics() == {f"rule.{rid}": {"type": "latency", "stream": "downstream", "toxicity": 1,
                                            "attributes": {"latency": 400, "jitter": 50}}}
    slow, r = timed_get(tox.url + "/hello")
    assert r.status_code == 200 and slow >= 0.34
    tox.remove(rid)
    fast, _ = timed_get(tox.url + "/hello")
    assert fast < slow - 0.2
    added, removed = [e for e in tox.events("toxic", mark) if e["rule"] == rid]
    assert (added["op"], removed["op"], added["link"], added["toxic"]) == ("added", "removed", "integration->echo",
                                                                          "latency")


def test_bandwidth_slows_a_large_answer(tox):
    t0 = time.monotonic()
    r = requests.post(tox.url + "/big", data={"v": BIG}, timeout=10)
    base = time.monotonic() - t0
    assert len(r.content) > 60_000
    tox.rule({"toxic": "bandwidth", "attributes": {"rate": 60}})  # KB/s
    t0 = time.monotonic()
    r = requests.post(tox.url + "/big", data={"v": BIG}, timeout=10)
    slow = time.monotonic() - t0
    assert r.json()["echo"]["v"] == BIG          # complete, just slow
    assert slow >= 0.7 and slow > base * 3


def test_slow_close_holds_the_connection_open_after_the_answer(tox):
    tox.rule({"toxic": "slow_close", "attributes": {"delay": 700}})
    s = socket.create_connection(("127.0.0.1", tox.port), timeout=5)
    try:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        t0 = time.monotonic()
        data = s.recv(65536)
        first_byte = time.monotonic() - t0
        while True:
            more = s.recv(65536)
            if not more:
                break
            data += more
        eof = time.monotonic() - t0
    finally:
        s.close()
    # the whole answer came at once; the close came ~0.7 s later
    assert b"200 OK" in data and data.endswith(b"}")
    assert eof >= 0.6 and first_byte < eof - 0.3


def test_timeout_toxic_closes_without_an_answer(tox):
    tox.rule({"toxic": "timeout", "attributes": {"timeout": 300}})
    t0 = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        requests.get(tox.url + "/hello", timeout=5)
    assert 0.25 <= time.monotonic() - t0 < 4


def test_reset_peer_is_a_connection_reset(tox):
    tox.rule({"toxic": "reset_peer", "attributes": {"timeout": 0}})
    chunks, err = tox.raw("/hello")
    assert isinstance(err, ConnectionResetError) and not chunks
    with pytest.raises(requests.ConnectionError) as e:
        requests.get(tox.url + "/hello", timeout=5)
    assert "reset" in str(e.value).lower()


def test_slicer_delivers_the_answer_in_small_slices(tox):
    tox.rule({"toxic": "slicer", "attributes": {"average_size": 64, "size_variation": 0, "delay": 3000}})
    body = b"v=" + b"y" * 3000
    chunks, err = tox.raw("/sliced", body)
    data = b"".join(c for _, c in chunks)
    assert err is None and data.endswith(b'"}}') and b"y" * 3000 in data
    assert max(len(c) for _, c in chunks) <= 64 * 2 and len(chunks) >= len(data) // 128


def test_limit_data_truncates_the_answer(tox):
    chunks, _ = tox.raw("/hello", b"v=" + b"z" * 500)
    full = b"".join(c for _, c in chunks)
    head_len = full.index(b"\r\n\r\n") + 4
    limit = head_len + 100
    tox.rule({"toxic": "limit_data", "attributes": {"bytes": limit}})
    chunks, err = tox.raw("/hello", b"v=" + b"z" * 500)
    data = b"".join(c for _, c in chunks)
    assert len(full) > limit and len(data) == limit and b"200 OK" in data
    declared = int(data.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0])
    assert declared == len(full) - head_len > len(data) - head_len == 100
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        requests.post(tox.url + "/hello", data={"v": "z" * 500}, timeout=5)


def test_upstream_stream_cuts_the_request_before_the_mock_sees_it(tox):
    before = len(tox.events("request"))
    tox.rule({"toxic": "limit_data", "stream": "upstream", "attributes": {"bytes": 20}})
    chunks, err = tox.raw("/never", b"v=1")
    assert not chunks or err is not None or b"".join(c for _, c in chunks) == b""
    assert [e for e in tox.events("request")[before:] if e.action == "never"] == []
    assert tox.toxics()[next(iter(tox.toxics()))]["stream"] == "upstream"


def test_link_down_refuses_connections_and_comes_back_on_the_same_port(tox):
    mark = tox.mark()
    rid = tox.rule({"link_down": True})
    with pytest.raises(requests.ConnectionError) as e:
        requests.get(tox.url + "/hello", timeout=5)
    assert "refused" in str(e.value).lower()
    other = tox.urls["links"]["integration->other"]
    assert requests.get(f"http://{other}/hello", timeout=5).status_code == 200  # other links unaffected
    tox.remove(rid)
    assert requests.get(tox.url + "/hello", timeout=5).status_code == 200
    ops = [(e["op"], e["link"]) for e in tox.events("link", mark) if e["rule"] == rid]
    assert ops == [("down", "integration->echo"), ("up", "integration->echo")]


def test_toxicity_zero_keeps_the_toxic_but_never_applies_it(tox):
    tox.rule({"toxic": "latency", "attributes": {"latency": 800}, "toxicity": 0.0})
    assert next(iter(tox.toxics().values()))["toxicity"] == 0
    took, r = timed_get(tox.url + "/hello")
    assert r.status_code == 200 and took < 0.7


def test_glob_link_selects_several_links_and_omitted_link_selects_all(tox):
    tox.rule({"toxic": "latency", "attributes": {"latency": 50}}, link={"glob": "integration->*"})
    assert len(tox.toxics("integration->echo")) == 1 and len(tox.toxics("integration->other")) == 1
    requests.post(tox.ht.host.urls["control"] + "/rules", json={"effect": {"toxic": "slicer"}}, timeout=5)
    tox.ht.call(tox.stack.driver.sync)
    assert len(tox.toxics("integration->echo")) == 2 and len(tox.toxics("integration->other")) == 2


def test_scheduled_window_adds_and_removes_the_toxic_on_the_run_clock(tox):
    now = tox.ht.host.engine.elapsed()
    start, end = now + 0.4, now + 1.6
    mark = tox.mark()
    rid = tox.rule({"link_down": True}, schedule={"window": {"start": start, "end": end}})
    assert requests.get(tox.url + "/hello", timeout=5).status_code == 200     # before the window
    _sleep_until(tox, start + 0.6)
    with pytest.raises(requests.ConnectionError):
        requests.get(tox.url + "/hello", timeout=5)                           # inside
    _sleep_until(tox, end + 0.6)
    assert requests.get(tox.url + "/hello", timeout=5).status_code == 200     # after
    down, up = [e for e in tox.events("link", mark) if e["rule"] == rid]
    assert down["op"] == "down" and start <= down["t_run"] < start + 0.5      # the driver wakes at each edge
    assert up["op"] == "up" and end <= up["t_run"] < end + 0.5


def _sleep_until(tox, t_run):
    time.sleep(max(0.0, t_run - tox.ht.host.engine.elapsed()))


def test_a_refused_toxic_is_journaled_and_does_not_stop_the_driver(tox):
    mark = tox.mark()
    bad = tox.rule({"toxic": "latency", "attributes": {"nope": 1}})
    (err,) = [e for e in tox.events("toxic", mark) if e["rule"] == bad]
    assert err["op"] == "error" and "nope" in err["error"]
    good = tox.rule({"toxic": "latency", "attributes": {"latency": 300}})
    assert list(tox.toxics()) == [f"rule.{good}"]
    took, _ = timed_get(tox.url + "/hello")
    assert took >= 0.25


def test_parallel_runs_do_not_collide_and_a_dead_run_is_cleaned_up(server):
    client = server.client
    target = socket.socket()
    target.bind(("127.0.0.1", 0))
    target.listen(8)
    try:
        a, b = Links(client), Links(client)
        la = a.add("integration->solver", f"127.0.0.1:{target.getsockname()[1]}")
        lb = b.add("integration->solver", f"127.0.0.1:{target.getsockname()[1]}")
        assert la.proxy != lb.proxy and la.port != lb.port
        assert la.proxy == f"{a.run_id}.integration-solver"
        b.add("chat->integration", "127.0.0.1:9")
        # run b "dies": only its proxies go
        assert cleanup_run(client, b.run_id) == sorted([lb.proxy, f"{b.run_id}.chat-integration"])
        names = set(client.proxies())
        assert la.proxy in names and not any(n.startswith(b.run_id + ".") for n in names)
        a.remove_all()
        assert la.proxy not in client.proxies()
    finally:
        target.close()
