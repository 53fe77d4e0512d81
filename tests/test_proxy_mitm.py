"""The mitmproxy addon: HTTP-level rules at the proxy, decided by the run's seeded engine, every flow
journaled — with real mitmdump, the real solver mock and real clients."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from harness.faults.engine import roll
from harness.host import HostThread
from harness.journal import read_events
from harness.proxy.mitm import MitmProxy, MitmRoute
from harness.verdict.base import Facts, delivered
from mocks.solver import DEFAULT_KEY as KEY
from mocks.solver.invariants import SolutionBook
from tests.echo_service import EchoMock

RECAPTCHA = {"key": KEY, "method": "userrecaptcha", "googlekey": "6Le-site", "pageurl": "https://e.test/login"}
SOLVER = "integration->solver"


class _Live(BaseHTTPRequestHandler):
    """Stands in for a real upstream service (live mode): not a mock, knows nothing of the harness."""
    hits = 0
    headers: list = []

    def do_GET(self):
        type(self).hits += 1
        type(self).headers.append(dict(self.headers))
        body = b"live ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("mitm")
    live = ThreadingHTTPServer(("127.0.0.1", 0), _Live)
    threading.Thread(target=live.serve_forever, daemon=True).start()
    try:
        with HostThread(services={"solver": {"solve_min_s": 0.02, "solve_max_s": 0.05}, "echo": {}},
                        service_classes={"echo": EchoMock}, run_dir=str(run_dir), seed=11, hang_limit_s=5) as ht:
            routes = [MitmRoute(SOLVER, "solver", ht.host.urls["solver"], tag=True),
                      MitmRoute("integration->echo", "echo", ht.host.urls["echo"], tag=True),
                      MitmRoute("integration->live", None, f"http://127.0.0.1:{live.server_port}")]
            with MitmProxy(routes, ht.host.urls["control"], run_dir=str(run_dir), hang_limit_s=2) as mitm:
                yield ht, mitm.urls
    finally:
        live.shutdown()
        live.server_close()


@pytest.fixture()
def m(env):
    ht, urls = env
    yield M(ht, urls)
    requests.delete(ht.host.urls["control"] + "/rules", timeout=5)


class M:
    def __init__(self, ht, urls):
        self.ht, self.urls = ht, urls
        self.solver = urls[SOLVER]
        self.mark = ht.host.journal.seq

    def rule(self, **rule):
        r = requests.post(self.ht.host.urls["control"] + "/rules", json=rule, timeout=5)
        assert r.status_code == 201, r.text
        return r.json()["ids"][0]

    def events(self, kind=None, service=None):
        return [e for e in read_events(self.ht.host.journal.read_since(self.mark))
                if (kind is None or e.kind == kind) and (service is None or e.service == service)]

    def flows(self, n, timeout=5.0):
        """The proxy.flow events, waiting for ``n`` of them (duplicates complete after the client's answer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            flows = self.events("proxy.flow")
            if len(flows) >= n:
                return flows
            time.sleep(0.02)
        raise AssertionError(f"expected {n} proxy.flow events, got {self.events('proxy.flow')}")

    def submit(self, **more):
        return requests.get(self.solver + "/in.php", params={**RECAPTCHA, **more}, timeout=5)


def test_forwarded_flows_are_journaled_with_the_mocks_own_action_and_params(m):
    r = m.submit()
    assert r.status_code == 200 and r.text.startswith("OK|")
    (flow,) = m.flows(1)
    assert (flow["link"], flow["service"], flow["action"], flow["outcome"], flow["status"], flow["rule"]) == \
        (SOLVER, "solver", "in.php", "forwarded", 200, None)
    (req,) = m.events("request", "solver")
    assert req.action == "in.php" and req["params"]["googlekey"] == "6Le-site"
    assert flow.seq > req.seq


def test_drop_response_partial_failure_task_exists_upstream_client_never_saw_its_id(m):
    """The failure that makes clients resubmit: the solver created the task, the answer was lost."""
    rid = m.rule(match={"service": "solver", "action": "in.php"}, effect={"drop_response": True},
                 schedule={"times": 1})
    with pytest.raises(requests.ConnectionError):
        m.submit()
    (resp,) = m.events("response", "solver")
    assert resp["status"] == 200 and resp["body"].startswith("OK|") and resp["rule"] is None
    lost_id = resp["body"][3:]
    (flow,) = m.flows(1)
    assert (flow["outcome"], flow["rule"], flow["status"], flow["upstream_status"]) == ("dropped", rid, None, 200)
    assert flow.seq > resp.seq
    # the task exists upstream: asked directly, the solver knows the id the client never saw
    direct = requests.get(m.ht.host.urls["solver"] + "/res.php",
                          params={"key": KEY, "action": "get", "id": lost_id}, timeout=5).text
    assert direct == "CAPCHA_NOT_READY" or direct.startswith("OK|")
    # the client resubmits: a second task, the only one it knows about
    again = m.submit()
    assert again.text.startswith("OK|") and again.text[3:] != lost_id
    assert [e["outcome"] for e in m.flows(2)] == ["dropped", "forwarded"]
    # judged from the journal: the mock delivered its answer to the proxy, the client never got it
    deadline = time.monotonic() + 5
    while len(m.events("solution", "solver")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    events = m.events()
    first, second = (e for e in events if e.kind == "request" and e.action == "in.php")
    assert first["via"] == flow["fid"] and second["via"] not in (None, flow["fid"])
    facts = Facts(events)
    assert facts.response_to(first)["outcome"] == "lost_at_proxy" and facts.response_to(first)["lost_at"] == flow["fid"]
    assert delivered(facts.response_to(second))
    book = SolutionBook(facts)
    assert not book.tasks[lost_id].claimed and book.tasks[again.text[3:]].claimed


def test_protocol_error_is_answered_by_the_proxy_in_the_services_shape(m):
    rid = m.rule(match={"link": SOLVER, "action": "in.php"}, effect={"error": "ERROR_NO_SLOT_AVAILABLE"})
    r = m.submit(json="1")
    assert r.status_code == 200 and r.json() == {"status": 0, "request": "ERROR_NO_SLOT_AVAILABLE"}
    assert m.submit().text == "ERROR_NO_SLOT_AVAILABLE"   # plain, as the mock answers without json=1
    assert m.events("request", "solver") == []            # upstream never saw them
    flows = m.flows(2)
    assert {(f["outcome"], f["rule"], f["status"]) for f in flows} == {("replaced", rid, 200)}
    decisions = [e for e in m.events("decision") if e["rule"] == rid]
    assert [(d["link"], d["fired"], d["ref"]) for d in decisions] == [(SOLVER, True, f["fid"]) for f in flows]


def test_raw_status_and_body(m):
    m.rule(match={"link": SOLVER}, effect={"status": 502, "body": "<html>bad gateway</html>"})
    r = m.submit()
    assert r.status_code == 502 and "bad gateway" in r.text and r.headers["Content-Type"].startswith("text/html")


def test_duplicate_request_reaches_upstream_n_extra_times(m):
    rid = m.rule(match={"action": "in.php"}, effect={"duplicate_request": 2}, schedule={"times": 1})
    r = m.submit()
    assert r.text.startswith("OK|")
    flows = m.flows(3)
    original = [f for f in flows if f["outcome"] == "duplicated"]
    copies = [f for f in flows if f["outcome"] == "duplicate"]
    assert len(original) == 1 and original[0]["duplicates"] == 2 and original[0]["rule"] == rid
    assert len(copies) == 2 and {c["replay_of"] for c in copies} == {original[0]["fid"]}
    created = [e["body"] for e in m.events("response", "solver")]
    assert len(created) == 3 and all(b.startswith("OK|") for b in created) and len(set(created)) == 3
    assert r.text in created  # the client got one of them (the first), the other two tasks are orphans


def test_delay_hang_and_reset_on_a_link(m):
    m.rule(match={"link": SOLVER, "action": "res.php"}, effect={"delay_ms": 400})
    t0 = time.monotonic()
    r = requests.get(m.solver + "/res.php", params={"key": KEY, "action": "getbalance"}, timeout=5)
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.38
    m.rule(match={"link": "integration->echo", "action": "hang"}, effect={"hang": True})
    with pytest.raises(requests.Timeout):
        requests.get(m.urls["integration->echo"] + "/hang", timeout=0.8)
    m.rule(match={"link": "integration->echo", "action": "reset"}, effect={"reset": True})
    with pytest.raises(requests.ConnectionError):
        requests.get(m.urls["integration->echo"] + "/reset", timeout=5)
    outcomes = {f["action"]: f["outcome"] for f in m.flows(3)}
    assert outcomes == {"res.php": "forwarded", "hang": "hang", "reset": "reset"}
    assert [e.action for e in m.events("request", "echo")] == []  # neither reached the mock


def test_rules_without_a_link_stay_in_the_mock_and_are_not_applied_twice(m):
    rid = m.rule(match={"service": "solver", "action": "in.php"}, effect={"error": "ERROR_ZERO_BALANCE"})
    assert m.submit().text == "ERROR_ZERO_BALANCE"
    (flow,) = m.flows(1)
    assert flow["outcome"] == "forwarded" and flow["rule"] is None
    (resp,) = m.events("response", "solver")
    assert resp["rule"] == rid
    assert len([e for e in m.events("decision") if e["rule"] == rid]) == 1  # the mock's, not the proxy's


def test_params_select_at_the_proxy_as_at_the_mock(m):
    m.rule(match={"link": SOLVER, "params": {"method": "turnstile"}}, effect={"error": "ERROR_BAD_PARAMETERS"})
    assert m.submit().text.startswith("OK|")
    assert m.submit(method="turnstile", sitekey="0x4", json="1").json()["request"] == "ERROR_BAD_PARAMETERS"
    post = requests.post(m.solver + "/in.php", data={**RECAPTCHA, "method": "turnstile", "sitekey": "0x4"},
                         timeout=5)
    assert post.text == "ERROR_BAD_PARAMETERS"  # form body parsed by the mock's own parser


def test_probability_at_the_proxy_is_the_seeded_roll(m):
    rid = m.rule(match={"link": "integration->echo"}, effect={"status": 503}, schedule={"probability": 0.5})
    got = [requests.get(m.urls["integration->echo"] + f"/p{i}", timeout=5).status_code == 503 for i in range(16)]
    expected = [roll(11, rid, n) < 0.5 for n in range(1, 17)]
    assert got == expected and any(got) and not all(got)


def test_live_mode_forwards_to_any_upstream_and_still_applies_link_rules(m):
    before = _Live.hits
    assert requests.get(m.urls["integration->live"] + "/anything", timeout=5).text == "live ok"
    assert "X-Harness-Flow" not in _Live.headers[-1]   # a live service never sees the harness's tag
    m.rule(match={"link": "integration->live", "action": "down"}, effect={"error": "Unavailable", "status": 503})
    r = requests.get(m.urls["integration->live"] + "/down", timeout=5)
    assert r.status_code == 503 and "Unavailable" in r.text
    assert _Live.hits == before + 1
    assert [f["outcome"] for f in m.flows(2)] == ["forwarded", "replaced"]


def test_bad_decide_input_is_a_400(m):
    c = m.ht.host.urls["control"] + "/decide"
    assert requests.post(c, json=[], timeout=5).status_code == 400
    assert requests.post(c, json={"request": {"headers": "x"}}, timeout=5).status_code == 400
    assert requests.post(c, json={"request": {"body_b64": "%%%"}}, timeout=5).status_code == 400
    ok = requests.post(c, json={"service": "solver", "link": SOLVER, "request": {
        "method": "GET", "path": "/in.php?key=k&method=base64", "headers": [], "body_b64": ""}}, timeout=5)
    assert ok.json() == {"action": "in.php", "decision": None}


def test_an_upstream_that_is_down_is_a_502_and_journaled(m):
    control = m.ht.host.urls["control"]
    requests.post(control + "/services/echo/stop", timeout=5)
    try:
        r = requests.get(m.urls["integration->echo"] + "/x", timeout=5)
    finally:
        requests.post(control + "/services/echo/start", timeout=5)
    assert r.status_code == 502
    (flow,) = m.flows(1)
    assert (flow["outcome"], flow["status"]) == ("upstream_error", 502)
    assert "connect" in flow["error"].lower()
    assert requests.get(m.urls["integration->echo"] + "/x", timeout=5).status_code == 200
