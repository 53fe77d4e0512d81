"""A rule knows its applier, and an effect means the same wherever it applies.

``Rule.applier`` is computed once when a rule is parsed; the mock, the callback sender, the
control API's ``/decide`` (for the mitmproxy addon) and the toxic driver each decide only their own
rules. The same effect, applied by the mock and by the mitmproxy addon on a link (and, for delays,
by the callback sender), gives the same observable result — with real mitmdump and real sockets, at
a time scale other than 1 so that a delay not scaled somewhere shows.
"""

import time

import pytest
import requests

from harness.faults import Applier, Effect, RuleEngine, parse_rules
from harness.faults.rules import APPLIER_FIELDS, RuleError
from harness.host import HostThread
from harness.journal import read_events
from harness.proxy.mitm import MitmProxy, MitmRoute
from harness.proxy.toxics import desired_state
from tests.echo_service import EchoMock

LINK = "integration->echo"
TIME_SCALE = 0.25
HANG_LIMIT_S = 1.0


# --- the applier, computed at parse time ------------------------------------------------------
APPLIERS = [
    ({"effect": {"error": "InternalError"}}, Applier.MOCK),
    ({"effect": {"captcha_code": 26}}, Applier.MOCK),
    ({"effect": {"status": 502, "body": "<html>bad</html>", "headers": {"X-A": "1"}, "content_type": "text/html"}},
     Applier.MOCK),
    ({"effect": {"delay_ms": 100}}, Applier.MOCK),
    ({"effect": {"hang": True}}, Applier.MOCK),
    ({"effect": {"reset": True}}, Applier.MOCK),
    ({"effect": {"partial_body": 10}}, Applier.MOCK),
    ({"match": {"link": LINK}, "effect": {"error": "InternalError", "message": "m"}}, Applier.MITM),
    ({"match": {"link": {"glob": "*"}}, "effect": {"status": 503}}, Applier.MITM),
    ({"match": {"link": LINK}, "effect": {"delay_ms": 100}}, Applier.MITM),
    ({"match": {"link": LINK}, "effect": {"hang": True}}, Applier.MITM),
    ({"match": {"link": LINK}, "effect": {"reset": True}}, Applier.MITM),
    ({"effect": {"drop_response": True}}, Applier.MITM),
    ({"match": {"link": LINK}, "effect": {"duplicate_request": 2, "delay_ms": 5}}, Applier.MITM),
    ({"effect": {"callback": "drop"}}, Applier.CALLBACK),
    ({"effect": {"callback": "duplicate", "count": 2, "spread_ms": 10}}, Applier.CALLBACK),
    ({"effect": {"callback": "delay", "delay_ms": 100}}, Applier.CALLBACK),
    ({"effect": {"callback": "wrong_url", "url": "http://127.0.0.1:9/"}}, Applier.CALLBACK),
    ({"match": {"service": "solver"}, "effect": {"callback": "bad_sign"}}, Applier.CALLBACK),
    ({"match": {"link": LINK}, "effect": {"toxic": "latency", "attributes": {"latency": 5}, "stream": "upstream",
                                         "toxicity": 0.5}}, Applier.TOXIC),
    ({"effect": {"toxic": "reset_peer"}}, Applier.TOXIC),
    ({"match": {"link": LINK}, "effect": {"link_down": True}}, Applier.LINK),
]


@pytest.mark.parametrize("doc,applier", APPLIERS)
def test_the_applier_is_computed_when_the_rule_is_parsed(doc, applier):
    (rule,) = parse_rules(doc)
    assert rule.applier is applier
    assert rule.public() == doc  # the journaled form does not carry it


def test_every_effect_field_is_applied_by_some_applier_and_the_table_covers_every_applier():
    assert set(Effect.model_fields) == set().union(*APPLIER_FIELDS.values())
    assert {a for _, a in APPLIERS} == set(Applier)


REFUSED = [
    ({"effect": {"callback": "drop", "error": "X"}}, "error"),
    ({"effect": {"callback": "drop", "toxic": "latency"}}, "callback and toxic"),
    ({"effect": {"toxic": "latency", "link_down": True}}, "toxic and link_down"),
    ({"effect": {"toxic": "latency", "delay_ms": 100}}, "delay_ms"),
    ({"effect": {"drop_response": True, "partial_body": 3}}, "partial_body"),
    ({"match": {"link": LINK}, "effect": {"partial_body": 3}}, "partial_body"),
    ({"match": {"link": LINK}, "effect": {"callback": "drop"}}, "callback"),
    ({"effect": {"error": "X", "count": 3}}, "count"),
    ({"effect": {"link_down": True, "attributes": {"latency": 1}}}, "attributes"),
]


@pytest.mark.parametrize("doc,field", REFUSED)
def test_a_combination_no_applier_carries_out_is_refused_naming_the_field(doc, field):
    with pytest.raises(RuleError) as e:
        parse_rules([doc])
    assert str(e.value).startswith(f"rules[0].effect: {field}"), str(e.value)
    assert "\n" not in str(e.value)


def test_the_engine_decides_only_the_rules_of_the_applier_asking():
    records = []
    engine = RuleEngine(record=records.append)
    engine.add([{**doc, "id": f"{a.value}{i}"} for i, (doc, a) in enumerate(APPLIERS)])
    applier_of = {rid: rule.applier for rid, rule in engine.rules()}
    for applier in Applier:
        records.clear()
        engine.decide("echo", "ping", {}, link=LINK, applier=applier)
        considered = {r["rule"] for r in records if r["kind"] == "decision"}
        assert considered and {applier_of[rid] for rid in considered} == {applier}


# --- the same effect at every applier, on real sockets -----------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("semantics")
    with HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(run_dir), seed=3,
                    time_scale=TIME_SCALE, hang_limit_s=HANG_LIMIT_S) as ht:
        # the launcher's own hang limit differs from the host's: the addon must hold as long as the mock
        with MitmProxy([MitmRoute(LINK, "echo", ht.host.urls["echo"])], ht.host.urls["control"],
                       run_dir=str(run_dir), hang_limit_s=30) as mitm:
            yield Env(ht, mitm.urls[LINK])


class Env:
    def __init__(self, ht, proxy_url):
        self.ht, self.control = ht, ht.host.urls["control"]
        self.urls = {Applier.MOCK: ht.host.urls["echo"], Applier.MITM: proxy_url}

    def rule(self, applier, action, effect):
        match = {"service": "echo", "action": action}
        if applier is Applier.MITM:
            match["link"] = LINK
        r = requests.post(self.control + "/rules", json={"match": match, "effect": effect}, timeout=5)
        assert r.status_code == 201, r.text
        return r.json()["ids"][0]

    def get(self, applier, path, **kw):
        return requests.get(self.urls[applier] + path, timeout=kw.pop("timeout", 5), **kw)

    def decisions(self, since):
        return [e for e in read_events(self.ht.host.journal.read_since(since)) if e.kind == "decision"]


@pytest.fixture()
def e(env):
    yield env
    requests.delete(env.control + "/rules", timeout=5)


def _elapsed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


# delay_ms 400 at time scale 0.25: 0.1 s wherever it applies (0.4 s where it is not scaled)
DELAY_MS, SCALED_S = 400, 0.1


def _delay_at_mock_or_proxy(e, applier):
    e.rule(applier, "slow", {"delay_ms": DELAY_MS})
    return _elapsed(lambda: e.get(applier, "/slow").raise_for_status())


def _delay_at_callback(e, applier):
    e.rule(applier, "ping", {"callback": "delay", "delay_ms": DELAY_MS})
    sink = e.urls[Applier.MOCK] + "/sink"
    return _elapsed(lambda: e.get(Applier.MOCK, "/notify", params={"url": sink}).raise_for_status())


@pytest.mark.parametrize("applier,apply", [(Applier.MOCK, _delay_at_mock_or_proxy),
                                           (Applier.MITM, _delay_at_mock_or_proxy),
                                           (Applier.CALLBACK, _delay_at_callback)])
def test_delay_is_scaled_by_the_time_scale_wherever_it_applies(e, applier, apply):
    took = apply(e, applier)
    assert SCALED_S <= took < DELAY_MS / 1000.0 - 0.05, f"{applier.value}: {took:.3f}s"


def test_the_proxy_decision_carries_the_scaled_delay_and_the_hosts_hang_limit(e):
    e.rule(Applier.MITM, "slow", {"delay_ms": DELAY_MS, "hang": True})
    answer = requests.post(e.control + "/decide", json={"service": "echo", "link": LINK, "request": {
        "method": "GET", "path": "/slow", "headers": [], "body_b64": ""}}, timeout=5).json()
    assert (answer["decision"]["delay_s"], answer["decision"]["hang_s"]) == (SCALED_S, HANG_LIMIT_S)


SHAPED = [
    {"error": "Boom"},
    {"error": "Boom", "message": "down", "status": 503},
    {"captcha_code": 26},
    {"status": 502, "body": "<html>bad gateway</html>"},
    {"status": 200, "body": {"ok": False, "list": [1, 2]}},
    {"status": 418, "body": "short and stout", "content_type": "text/x-teapot", "headers": {"X-Fault": "tea"}},
    {"error": "Boom", "headers": {"Content-Type": "application/problem+json"}},
]


@pytest.mark.parametrize("effect", SHAPED, ids=lambda x: ",".join(x))
def test_a_shaped_reply_is_the_same_bytes_at_the_mock_and_through_the_proxy(e, effect):
    seen = {}
    for applier in (Applier.MOCK, Applier.MITM):
        e.rule(applier, f"shape-{applier.value}", effect)
        r = e.get(applier, f"/shape-{applier.value}")
        seen[applier] = (r.status_code, r.headers["Content-Type"], r.headers.get("X-Fault"), r.content)
    assert seen[Applier.MOCK] == seen[Applier.MITM]


def _outcome(e, applier, path, timeout):
    t0 = time.monotonic()
    try:
        e.get(applier, path, timeout=timeout)
        return "answered", time.monotonic() - t0
    except requests.Timeout:
        return "timeout", time.monotonic() - t0
    except requests.ConnectionError:
        return "closed", time.monotonic() - t0


@pytest.mark.parametrize("effect,expected", [({"reset": True}, ("closed", 0.0, HANG_LIMIT_S)),
                                             ({"hang": True}, ("closed", HANG_LIMIT_S, HANG_LIMIT_S + 2))])
def test_hang_and_reset_end_the_exchange_alike(e, effect, expected):
    for applier in (Applier.MOCK, Applier.MITM):
        e.rule(applier, f"end-{applier.value}", effect)
        outcome, took = _outcome(e, applier, f"/end-{applier.value}", timeout=HANG_LIMIT_S + 5)
        kind, low, high = expected
        assert outcome == kind and low <= took < high, f"{applier.value}: {outcome} after {took:.2f}s"


def test_each_component_decides_only_the_rules_it_applies(e):
    """Rules of every applier match everything; each component's decisions name only its own."""
    ids = {}
    for i, (doc, applier) in enumerate(APPLIERS):
        if "service" in doc.get("match", {}) or doc["effect"].get("hang") or doc["effect"].get("reset"):
            continue
        rule = {**doc, "id": f"{applier.value}-{i}", "schedule": {"probability": 0.0}}  # decided, never fired
        ids[rule["id"]] = parse_rules(rule)[0].applier
        r = requests.post(e.control + "/rules", json=rule, timeout=5)
        assert r.status_code == 201, r.text
    since = e.ht.host.journal.seq
    e.get(Applier.MOCK, "/x").raise_for_status()                                               # the mock
    e.get(Applier.MITM, "/y").raise_for_status()                                               # mitm + mock
    e.get(Applier.MOCK, "/notify", params={"url": e.urls[Applier.MOCK] + "/z"}).raise_for_status()  # callback
    by_component = {}
    flows = {ev["fid"] for ev in read_events(e.ht.host.journal.read_since(since)) if ev.kind == "proxy.flow"}
    for d in e.decisions(since):
        ref = str(d["ref"])
        component = (Applier.CALLBACK if ref.startswith("cb") else Applier.MITM if ref in flows
                     else Applier.MOCK if ref.startswith("ec") else None)
        by_component.setdefault(component, set()).add(ids[d["rule"]])
    assert by_component == {Applier.MOCK: {Applier.MOCK}, Applier.MITM: {Applier.MITM},
                            Applier.CALLBACK: {Applier.CALLBACK}}
    toxics, down = desired_state(e.ht.host.engine.rules(), [LINK], 0.0)
    assert {ids[rid] for _, rid in toxics} == {Applier.TOXIC} and {ids[rid] for rid in down.values()} == {Applier.LINK}
