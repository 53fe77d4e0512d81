"""Pingback delivery from the solver mock to a real receiver, and every callback fault by rule."""

import time

import pytest
import requests

from harness.host import HostThread
from harness.journal import read_events
from mocks.solver import DEFAULT_KEY as KEY
from mocks.solver.receiver import ReceiverThread
from mocks.solver.tasks import id_base

SEED = 5


def task_id(n):
    """The id of the n-th task of a run with SEED (ids are deterministic), so rules can be added
    before the task exists."""
    return str(id_base(SEED) + n)

RECAPTCHA = {"method": "userrecaptcha", "googlekey": "6Le-site", "pageurl": "https://example.test/login"}


@pytest.fixture()
def solver(tmp_path):
    cfg = {"solve_distribution": "fixed", "solve_min_s": 0.01, "solve_max_s": 0.01, "pingback_timeout_s": 2,
           "keys": {KEY: {"threads": 50}}}
    with HostThread(services={"solver": cfg}, run_dir=str(tmp_path), seed=SEED) as ht:
        yield ht


@pytest.fixture()
def receiver():
    with ReceiverThread() as r:
        yield r


def submit(ht, pingback, **extra):
    r = requests.get(ht.host.urls["solver"] + "/in.php",
                     params={"key": KEY, "json": 1, "pingback": pingback, **RECAPTCHA, **extra}, timeout=5)
    body = r.json()
    assert body["status"] == 1, body
    return str(body["request"])


def add_rules(ht, *rules):
    r = requests.post(ht.host.urls["control"] + "/rules", json=list(rules), timeout=5)
    assert r.status_code == 201, r.text
    return r.json()["ids"]


def put_config(ht, **patch):
    assert requests.put(ht.host.urls["control"] + "/solver/config", json=patch, timeout=5).status_code == 200


def callbacks(ht, settle_for=None, timeout=5.0):
    """Callback events; with ``settle_for=n`` wait until at least n are journaled."""
    deadline = time.monotonic() + timeout
    while True:
        evs = [e for e in read_events(ht.host.journal.read_since(0)) if e.kind == "callback"]
        if settle_for is None or len(evs) >= settle_for or time.monotonic() > deadline:
            return evs
        time.sleep(0.01)


def solutions(ht):
    return {str(e["task"]): e for e in read_events(ht.host.journal.read_since(0)) if e.kind == "solution"}


def pb(task_id, kind, **more):
    return {"match": {"service": "solver", "action": "pingback", "params": {"id": task_id}},
            "effect": {"callback": kind, **more}}


def test_get_pingback_carries_id_and_code_exactly(solver, receiver):
    tid = submit(solver, receiver.url + "?tenant=a")
    (got,) = receiver.wait_for(1)
    token = solutions(solver)[tid]["token"]
    assert got.method == "GET" and got.path == "/pingback"
    assert got.query == {"tenant": "a", "id": tid, "code": token} and got.form == {}
    (ev,) = callbacks(solver, 1)
    assert ev.action == "pingback" and ev["outcome"] == "delivered" and ev["status"] == 200
    assert ev["match"]["task"] == int(tid) and ev["latency_ms"] >= 0


def test_post_form_pingback_when_configured(solver, receiver):
    put_config(solver, pingback_method="POST")
    tid = submit(solver, receiver.url)
    (got,) = receiver.wait_for(1)
    assert got.method == "POST" and got.form == {"id": tid, "code": solutions(solver)[tid]["token"]}


def test_unsolvable_pingback_carries_the_error_code(solver, receiver):
    put_config(solver, unsolvable_sitekeys=["dead"])
    tid = submit(solver, receiver.url, googlekey="dead")
    (got,) = receiver.wait_for(1)
    assert got.query["code"] == "ERROR_CAPTCHA_UNSOLVABLE" and got.query["id"] == tid
    assert solutions(solver)[tid]["outcome"] == "unsolvable"


def test_drop_duplicate_and_spread(solver, receiver):
    a, b, c = task_id(1), task_id(2), task_id(3)
    add_rules(solver, pb(a, "drop"), pb(b, "duplicate", count=2), pb(c, "duplicate", count=1, spread_ms=300))
    assert [submit(solver, receiver.url) for _ in range(3)] == [a, b, c]
    seen = receiver.wait_for(5)
    time.sleep(0.2)
    ids = receiver.ids()
    assert ids.count(a) == 0 and ids.count(b) == 3 and ids.count(c) == 2
    times_c = [r.t for r in receiver.seen if r.fields["id"] == c]
    assert times_c[1] - times_c[0] >= 0.28
    evs = callbacks(solver)
    assert [e["outcome"] for e in evs if e["params"]["id"] == a] == ["dropped"]
    assert sorted(e["copy"] for e in evs if e["params"]["id"] == b) == [0, 1, 2]
    assert len(seen) >= 5


def test_delay_and_reorder(solver, receiver):
    put_config(solver, solve_distribution="fixed", solve_min_s=0.3, solve_max_s=0.3)
    add_rules(solver, pb(task_id(1), "reorder", delay_ms=3000), pb(task_id(3), "delay", delay_ms=400))
    first = submit(solver, receiver.url)
    time.sleep(0.1)
    second = submit(solver, receiver.url)            # solved 0.1 s after the first
    assert receiver.wait_for(2) and receiver.ids()[:2] == [second, first]
    t0 = time.monotonic()
    third = submit(solver, receiver.url)
    receiver.wait_for(3)
    assert receiver.ids()[2] == third == task_id(3) and time.monotonic() - t0 >= 0.3 + 0.35


def test_refused_wrong_url_and_timeout(solver, receiver):
    with ReceiverThread() as other, ReceiverThread(delay_s=1.5) as slow:
        put_config(solver, pingback_timeout_s=0.5)
        add_rules(solver, pb(task_id(1), "refused"), pb(task_id(2), "wrong_url", url=other.url))
        down, moved, hung = submit(solver, receiver.url), submit(solver, receiver.url), submit(solver, slow.url)
        evs = callbacks(solver, 3)
        by_id = {e["params"]["id"]: e for e in evs}
        assert by_id[down]["outcome"] == "refused" and by_id[down]["url"] != receiver.url
        assert by_id[moved]["outcome"] == "delivered" and other.ids() == [moved]
        assert by_id[hung]["outcome"] == "timeout" and 400 <= by_id[hung]["latency_ms"] < 1500
        assert receiver.ids() == []
        assert sum(e["params"]["id"] == down for e in evs) == 1  # refused is not retried by default


def test_wrong_id_is_a_forged_unknown_id(solver, receiver):
    add_rules(solver, pb(task_id(1), "wrong_id"))
    tid = submit(solver, receiver.url)
    (got,) = receiver.wait_for(1)
    assert got.query["id"] != tid and got.query["code"] == solutions(solver)[tid]["token"]
    poll = requests.get(solver.host.urls["solver"] + "/res.php",
                        params={"key": KEY, "action": "get", "id": got.query["id"]}, timeout=5)
    assert poll.text == "ERROR_WRONG_CAPTCHA_ID"  # really unknown to the solver
    (ev,) = callbacks(solver, 1)
    assert ev["match"]["forged_from"] == int(tid) and ev["params"]["id"] == got.query["id"]


def test_http_error_is_final_by_default_and_retried_when_configured(solver):
    with ReceiverThread(status=503) as failing:
        submit(solver, failing.url)
        failing.wait_for(1)
        time.sleep(0.2)
        assert len(failing.seen) == 1
        put_config(solver, pingback_retries=2, pingback_retry_on=["http_error"])
        submit(solver, failing.url)
        failing.wait_for(4)
        evs = callbacks(solver, 4)
        assert [e["attempt"] for e in evs[1:]] == [0, 1, 2] and {e["outcome"] for e in evs} == {"http_error"}


def test_registration_ignore_sends_nothing(solver, receiver):
    put_config(solver, pingback_registration="ignore")
    ignored = submit(solver, receiver.url)
    requests.get(solver.host.urls["solver"] + "/res.php",
                 params={"key": KEY, "action": "add_pingback", "addr": receiver.url.rsplit("/", 1)[0]}, timeout=5)
    kept = submit(solver, receiver.url)
    receiver.wait_for(1)
    time.sleep(0.1)
    assert receiver.ids() == [kept]
    sols = solutions(solver)
    assert sols[ignored]["pingback"] is None and sols[kept]["pingback"] == receiver.url


def test_probabilistic_faults_are_seeded(tmp_path):
    def run(seed):
        cfg = {"solve_distribution": "fixed", "solve_min_s": 0, "solve_max_s": 0, "keys": {KEY: {"threads": 100}}}
        with ReceiverThread() as r, HostThread(services={"solver": cfg}, run_dir=str(tmp_path / str(seed)),
                                               seed=seed) as ht:
            add_rules(ht, {"match": {"action": "pingback"}, "effect": {"callback": "drop"},
                           "schedule": {"probability": 0.3}})
            for _ in range(40):
                submit(ht, r.url)
            evs = callbacks(ht, 40)
            return [e["outcome"] for e in sorted(evs, key=lambda e: int(e["params"]["id"]))]
    a, b = run(3), run(3)
    assert a == b and 4 <= a.count("dropped") <= 24 and "delivered" in a
