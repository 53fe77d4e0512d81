"""The reference solver client (examples/solver_client) as a real process, against the solver mock
and a real redis-server: pingback handling (known ids only, idempotent), use on the protected site
exactly once, fallback polling, the dead-letter queue while Redis is down, and the bug variants
that break exactly those."""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.host import HostThread
from harness.run.processes import free_port, redis_server_binary
from mocks.solver import DEFAULT_KEY as KEY
from tests.waiting import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "examples", "solver_client", "app.py")
LATE_PINGBACK = {"match": {"service": "solver", "action": "pingback"}, "effect": {"callback": "delay", "delay_ms": 300}}
JOB = {"sitekey": "6Le-test-site", "pageurl": "https://shop.example/login"}


class Redis:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = str(tmp_path)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis
        r = redis.Redis(port=self.port, socket_timeout=1)
        wait_until(lambda: _pings(r), 10, "redis-server")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


def _pings(r):
    try:
        return r.ping()
    except Exception:
        return False


@pytest.fixture()
def solver(tmp_path):
    cfg = {"solve_distribution": "fixed", "solve_min_s": 0.05, "solve_max_s": 0.05, "keys": {KEY: {"threads": 20}}}
    with HostThread(services={"solver": cfg}, run_dir=str(tmp_path), seed=3) as ht:
        yield ht


@pytest.fixture()
def redis_server(tmp_path):
    r = Redis(tmp_path)
    r.start()
    yield r
    r.stop()


@pytest.fixture()
def start_client(solver, redis_server, tmp_path):
    procs = []

    def start(variant="correct", pingback_url=None, **env):
        port = free_port()
        solver_url = solver.host.urls["solver"]
        full_env = {**os.environ, "PORT": str(port), "VARIANT": variant, "SOLVER_URL": solver_url,
                    "SOLVER_KEY": KEY, "CALLBACK_URL": pingback_url or f"http://127.0.0.1:{port}",
                    "SITE_URL": solver_url + "/site/submit", "REDIS_URL": redis_server.url,
                    "CALLBACK_TIMEOUT": "0.5", "POLL_INTERVAL": "0.2", "DLQ_RETRY_INTERVAL": "0.2",
                    "SUBMIT_BACKOFF": "0.1", "HTTP_TIMEOUT": "3", "REDIS_TIMEOUT": "0.5", **env}
        log = open(tmp_path / f"client-{port}.log", "wb")
        proc = subprocess.Popen([sys.executable, APP], env=full_env, cwd=ROOT, stdout=log, stderr=log)
        procs.append((proc, log))
        url = f"http://127.0.0.1:{port}"

        def healthy():
            assert proc.poll() is None, (tmp_path / f"client-{port}.log").read_text()
            try:
                return requests.get(url + "/health", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_until(healthy, 20, "the client to listen")
        return url

    start.procs = procs
    yield start
    for proc, log in procs:
        proc.kill()
        proc.wait(5)
        log.close()


def tasks(solver):
    return {str(t["id"]): t for t in requests.get(solver.host.urls["control"] + "/solver/tasks",
                                                  timeout=5).json()["tasks"]}


def add_rule(solver, rule):
    assert requests.post(solver.host.urls["control"] + "/rules", json=rule, timeout=5).status_code == 201


def solve(url):
    r = requests.post(url + "/solve", json=JOB, timeout=15)
    assert r.status_code == 202, r.text
    return r.json()["task"]


def status(url):
    return requests.get(url + "/status", timeout=5).json()


def test_solution_used_once_via_pingback(solver, start_client):
    url = start_client()
    task = solve(url)
    t = wait_until(lambda: tasks(solver)[task]["used"] == 1 and tasks(solver)[task], what="the use")
    assert t["pingback"] == url + "/pingback"
    # the same pingback again (a duplicate delivery) is acknowledged and changes nothing
    r = requests.get(url + "/pingback", params={"id": task, "code": t["answer"]}, timeout=5)
    assert (r.status_code, r.text) == (200, "OK")
    time.sleep(0.5)
    assert tasks(solver)[task]["used"] == 1
    assert status(url)["counters"]["duplicate"] == 1


def test_use_workers_use_every_solution_exactly_once(solver, start_client):
    url = start_client(USE_WORKERS="8")
    with ThreadPoolExecutor(10) as pool:
        ids = list(pool.map(lambda _: solve(url), range(30)))
    wait_until(lambda: all(tasks(solver)[t]["used"] for t in ids), 15, "every solution to be used")
    for t in ids:  # every pingback again: duplicates, while eight workers take from the queue
        requests.get(url + "/pingback", params={"id": t, "code": tasks(solver)[t]["answer"]}, timeout=5)
    time.sleep(0.5)
    assert [tasks(solver)[t]["used"] for t in ids] == [1] * 30
    assert status(url)["counters"]["use_used"] == 30


def test_uses_interrupted_by_a_crash_are_requeued_once(solver, redis_server, start_client):
    """sc:using holds what a killed client was using; a restarted client with several workers queues
    each of them again exactly once (recovery runs before any worker takes)."""
    import redis
    ids = []
    for _ in range(12):
        r = requests.post(solver.host.urls["solver"] + "/in.php", timeout=5,
                          data={"key": KEY, "method": "userrecaptcha", "googlekey": "6Le-k", "pageurl": "https://x/",
                                "json": "1"})
        ids.append(str(r.json()["request"]))
    wait_until(lambda: all(tasks(solver)[t]["state"] == "solved" for t in ids), what="the solutions")
    db = redis.Redis.from_url(redis_server.url, decode_responses=True)
    for t in ids:
        db.hset("sc:results", t, tasks(solver)[t]["answer"])
        db.rpush("sc:using", t)
    url = start_client(USE_WORKERS="8")
    wait_until(lambda: status(url)["redis"]["used"] == 12, what="the interrupted uses")
    time.sleep(0.5)
    assert [tasks(solver)[t]["used"] for t in ids] == [1] * 12


def test_an_id_stranded_in_using_while_running_is_requeued_and_used_once(solver, redis_server, start_client):
    """BLMOVE moved an id to sc:using, and its reply never reached the user that asked (a Toxiproxy
    limit_data toxic on integration->redis cut it: found by `harness explore --sweep`, 3 of 6
    solutions lost). No user holds it, so the reaper requeues it once, after 1.5 × REDIS_TIMEOUT."""
    import redis
    url = start_client(USE_WORKERS="4")
    first = solve(url)
    wait_until(lambda: tasks(solver)[first]["used"] == 1, what="a first use (the client has recovered)")
    r = requests.post(solver.host.urls["solver"] + "/in.php", timeout=5,
                      data={"key": KEY, "method": "userrecaptcha", "googlekey": "6Le-k", "pageurl": "https://x/",
                            "json": "1"})
    stranded = str(r.json()["request"])
    wait_until(lambda: tasks(solver)[stranded]["state"] == "solved", what="its solution")
    db = redis.Redis.from_url(redis_server.url, decode_responses=True)
    db.hset("sc:results", stranded, tasks(solver)[stranded]["answer"])
    db.rpush("sc:using", stranded)           # as a BLMOVE whose reply was lost leaves it
    wait_until(lambda: tasks(solver)[stranded]["used"] == 1, 10, "the stranded solution's use")
    time.sleep(1.0)                          # a few more reaper passes: no second use
    assert tasks(solver)[stranded]["used"] == 1 and db.llen("sc:using") == 0
    assert status(url)["counters"].get("requeued_stranded") == 1, status(url)


def test_pingbacks_for_unknown_or_malformed_ids_are_refused(start_client):
    url = start_client()
    assert requests.get(url + "/pingback", params={"id": "99999999999", "code": "tok"}, timeout=5).status_code == 404
    assert requests.get(url + "/pingback", params={"id": "abc", "code": "tok"}, timeout=5).status_code == 400
    assert requests.post(url + "/pingback", data={"id": "1"}, timeout=5).status_code == 400
    assert requests.post(url + "/solve", json={"sitekey": ""}, timeout=5).status_code == 400


def test_dropped_pingback_recovered_by_polling_but_not_by_callback_only(solver, start_client):
    add_rule(solver, {"match": {"service": "solver", "action": "pingback"}, "effect": {"callback": "drop"}})
    good, bad = start_client(), start_client("callback_only")
    t_good, t_bad = solve(good), solve(bad)
    wait_until(lambda: tasks(solver)[t_good]["used"] == 1, what="the polled solution to be used")
    time.sleep(1.0)  # twice the callback timeout: callback_only never polls
    assert tasks(solver)[t_bad]["state"] == "solved" and tasks(solver)[t_bad]["used"] == 0
    assert status(good)["counters"].get("stored_via_poll") == 1


def test_non_idempotent_uses_a_duplicate_twice(solver, start_client):
    url = start_client("non_idempotent")
    task = solve(url)
    answer = wait_until(lambda: tasks(solver)[task]["used"] == 1 and tasks(solver)[task]["answer"], what="use")
    requests.get(url + "/pingback", params={"id": task, "code": answer}, timeout=5)
    wait_until(lambda: tasks(solver)[task]["used"] == 2, what="the second (buggy) use")


def test_unsolvable_is_never_used_and_is_resubmitted(solver, start_client):
    requests.put(solver.host.urls["control"] + "/solver/config", json={"unsolvable_tasks": [1]}, timeout=5)
    url = start_client()
    first = solve(url)
    wait_until(lambda: len(tasks(solver)) == 2 and any(t["used"] == 1 for t in tasks(solver).values()),
               what="a resubmitted task to be solved and used")
    assert tasks(solver)[first]["state"] == "unsolvable"


def test_redis_down_parks_in_dlq_and_reprocessing_saves_it(solver, redis_server, start_client):
    url = start_client()
    add_rule(solver, LATE_PINGBACK)
    task = solve(url)  # pending is stored while Redis is up
    redis_server.stop()
    wait_until(lambda: status(url)["dlq"]["size"] == 1, what="the result to be parked")
    assert tasks(solver)[task]["used"] == 0
    redis_server.start()  # same port: the database is back (empty: a fresh server)
    wait_until(lambda: tasks(solver)[task]["used"] == 1, what="the DLQ to be reprocessed")
    assert status(url)["dlq"]["recovered_total"] == 1


@pytest.mark.parametrize("spool", [True, False], ids=["spooled", "memory-only"])
def test_a_task_submitted_while_redis_is_away_survives_a_crash_through_the_spool(solver, redis_server,
                                                                                start_client, tmp_path, spool):
    """Redis away, a task submitted, the process killed before Redis is back: with SPOOL_PATH the
    restarted client finds the task in its spool, polls it and uses it; memory only, it is lost
    (harness explore found that double fault)."""
    env = {"SPOOL_PATH": str(tmp_path / "spool.json")} if spool else {}
    url = start_client(**env)
    redis_server.stop()
    task = solve(url)                                   # in.php answered; Redis could not take it
    assert status(url)["unsaved"] == [task]
    proc, _ = start_client.procs[-1]
    proc.kill()                                         # crashed before Redis is back
    proc.wait(5)
    redis_server.start()
    start_client(**env)                                 # a new process, the same spool
    if spool:
        wait_until(lambda: tasks(solver)[task]["used"] == 1, what="the spooled task's solution to be used")
    else:
        time.sleep(2.0)                                 # polls would have used it by now
        assert tasks(solver)[task]["used"] == 0


def test_a_hung_poll_holds_its_own_task_only(solver, start_client):
    """Two tasks whose pingbacks were lost, the first two polls held by the solver until the client's
    3 s HTTP timeout: polled side by side, both are used about 3 s later; one after the other (the
    poller before explore found it), the second waited for the first's hung poll, both ~6 s later."""
    url = start_client()
    add_rule(solver, {"match": {"service": "solver", "action": "pingback"}, "effect": {"callback": "drop"}})
    add_rule(solver, {"match": {"service": "solver", "action": "res.php"}, "effect": {"hang": True},
                      "schedule": {"times": 2}})
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        ids = list(pool.map(lambda _: solve(url), range(2)))
    wait_until(lambda: all(tasks(solver)[t]["used"] == 1 for t in ids), timeout=15, what="both solutions")
    assert time.monotonic() - started < 5.5


def test_dlq_never_reprocessed_keeps_the_result_parked(solver, redis_server, start_client):
    url = start_client("dlq_never_reprocessed")
    add_rule(solver, LATE_PINGBACK)
    task = solve(url)
    redis_server.stop()
    wait_until(lambda: status(url)["dlq"]["size"] == 1, what="the result to be parked")
    redis_server.start()
    time.sleep(1.0)  # five DLQ intervals of the correct client
    assert tasks(solver)[task]["used"] == 0
    assert status(url)["dlq"]["size"] == 1


def test_unknown_variant_refuses_to_start(tmp_path):
    env = {**os.environ, "VARIANT": "no_such_bug", "PORT": str(free_port())}
    proc = subprocess.run([sys.executable, APP], env=env, cwd=ROOT, capture_output=True, timeout=30)
    assert proc.returncode != 0
    assert b"no_such_bug" in proc.stderr
