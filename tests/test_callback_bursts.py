"""Callback copies that overlap (``duplicate`` + ``concurrent``, ``storm``) or follow each other
(``duplicate`` + ``spread_ms``), measured where they arrive: a real receiver that answers slowly, so
overlapping copies all arrive before the first one is answered and sequential ones cannot."""

import time

import pytest
import requests

from harness.faults.rules import RuleError, parse_rules
from harness.host import HostThread
from mocks.solver import DEFAULT_KEY as KEY
from mocks.solver.receiver import ReceiverThread
from mocks.solver.tasks import id_base

SEED = 8
ANSWER_S = 0.3   # the receiver's answer time
RECAPTCHA = {"method": "userrecaptcha", "googlekey": "6Le-site", "pageurl": "https://example.test/login"}


def task_id(n):
    return str(id_base(SEED) + n)


@pytest.fixture()
def solver(tmp_path):
    cfg = {"solve_distribution": "fixed", "solve_min_s": 0.01, "solve_max_s": 0.01, "pingback_timeout_s": 5,
           "keys": {KEY: {"threads": 50}}}
    with HostThread(services={"solver": cfg, "chat": {}}, run_dir=str(tmp_path), seed=SEED) as ht:
        yield ht


@pytest.fixture()
def slow_receiver():
    with ReceiverThread(delay_s=ANSWER_S) as r:
        yield r


def add_rule(ht, match, effect):
    r = requests.post(ht.host.urls["control"] + "/rules", json=[{"match": match, "effect": effect}], timeout=5)
    assert r.status_code == 201, r.text


def submit(ht, pingback):
    r = requests.get(ht.host.urls["solver"] + "/in.php",
                     params={"key": KEY, "json": 1, "pingback": pingback, **RECAPTCHA}, timeout=5)
    return str(r.json()["request"])


def arrivals(receiver, n, key="id", value=None, timeout=10.0):
    got = receiver.wait_for(n, timeout)
    return sorted((r for r in got if value is None or r.fields.get(key) == value), key=lambda r: r.t)


def test_concurrent_duplicates_overlap_on_separate_connections(solver, slow_receiver):
    tid = task_id(1)
    add_rule(solver, {"service": "solver", "action": "pingback", "params": {"id": tid}},
             {"callback": "duplicate", "count": 3, "concurrent": True})
    assert submit(solver, slow_receiver.url) == tid
    got = arrivals(slow_receiver, 4, value=tid)
    assert len(got) == 4
    spread = got[-1].t - got[0].t
    # every copy arrived before the first could have been answered: they overlap at the receiver
    assert spread < ANSWER_S / 3, spread
    assert len({r.peer for r in got}) == 4


def test_sequential_duplicates_wait_for_each_answer(solver, slow_receiver):
    tid = task_id(1)
    add_rule(solver, {"service": "solver", "action": "pingback", "params": {"id": tid}},
             {"callback": "duplicate", "count": 2})
    assert submit(solver, slow_receiver.url) == tid
    got = arrivals(slow_receiver, 3, value=tid)
    gaps = [b.t - a.t for a, b in zip(got, got[1:])]
    assert len(got) == 3 and min(gaps) >= ANSWER_S * 0.95, gaps


def test_storm_spreads_starts_over_within_ms(solver, slow_receiver):
    tid = task_id(1)
    add_rule(solver, {"service": "solver", "action": "pingback", "params": {"id": tid}},
             {"callback": "storm", "count": 19, "within_ms": 200})
    assert submit(solver, slow_receiver.url) == tid
    got = arrivals(slow_receiver, 20, value=tid)
    assert len(got) == 20
    spread = got[-1].t - got[0].t
    assert 0.15 <= spread < 0.2 + ANSWER_S / 2, spread   # spread out, yet not one after another's answer
    assert len({r.peer for r in got}) == 20


def test_chat_webhooks_take_the_same_shapes(solver, slow_receiver):
    control = solver.host.urls["control"]
    assert requests.put(control + "/chat/config", json={"webhook_url": slow_receiver.url}, timeout=5).ok
    add_rule(solver, {"service": "chat", "action": "State.StateChange"},
             {"callback": "duplicate", "count": 2, "concurrent": True})
    r = requests.post(control + "/chat/webhooks", json={"CallbackCommand": "State.StateChange"}, timeout=10)
    assert r.status_code == 200, r.text
    got = arrivals(slow_receiver, 3, key="CallbackCommand", value="State.StateChange")
    assert len(got) == 3 and got[-1].t - got[0].t < ANSWER_S / 3
    assert len({g.peer for g in got}) == 3


@pytest.mark.parametrize("effect, message", [
    ({"callback": "delay", "concurrent": True}, "concurrent: only for callback: duplicate"),
    ({"callback": "duplicate", "concurrent": True, "spread_ms": 10}, "concurrent copies start together"),
    ({"callback": "duplicate", "within_ms": 10}, "within_ms: only for callback: storm"),
    ({"callback": "storm", "spread_ms": 10}, "storm: give within_ms, not spread_ms"),
    ({"concurrent": True}, "effect does nothing"),
])
def test_burst_shapes_are_validated_in_one_line(effect, message):
    with pytest.raises(RuleError) as e:
        parse_rules({"effect": effect})
    assert message in str(e.value) and "\n" not in str(e.value)
