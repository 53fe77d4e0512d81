"""The parts of ``harness load`` below locust: flow weights, request building, the driver's var kinds
from synchronous code (against a real captcha mock), batched driver events into a real journal,
locust's command line, and the generated user classes (in a subprocess: importing locust
monkey-patches the process)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import requests

from harness.commands.load import build_argv, default_run_time
from harness.host import HostThread
from harness.journal import read_events
from harness.load.driver_journal import DriverJournal
from harness.load.flows import build_request, class_name, error_text, unreached, weight_of
from harness.load.vars_sync import SyncVarMaker
from harness.scenario.model import Flow, Scenario

CTX = {"target": {"url": "http://127.0.0.1:9"}, "user": "ann", "n": 7}


def flow(**kw):
    return Flow.model_validate({"name": "f", "request": {"path": "/x"}, **kw})


@pytest.mark.parametrize("kw, weight", [
    ({}, 1), ({"count": 12}, 12), ({"rate": 4, "duration": "5s"}, 20), ({"rate": 2.4}, 2),
    ({"count": 3, "rate": 50}, 3), ({"rate": 0.1}, 1),
])
def test_weights_follow_flow_sizes(kw, weight):
    assert weight_of(flow(**kw)) == weight


def test_class_names_are_identifiers_and_unique():
    taken = set()
    names = [class_name(flow(name=n), taken) for n in ("bad-login", "bad.login", "login")]
    assert names == ["Flow_bad_login", "Flow_bad_login_2", "Flow_login"]
    assert all(n.isidentifier() for n in names)


def test_build_request_json_query_headers():
    f = flow(request={"method": "POST", "path": "/login/${user}", "query": {"a": "${n}", "b": "x y"},
                      "headers": {"X-User": "${user}"}, "json": {"user": "${user}", "n": "${n}"}})
    url, kw = build_request(f, CTX)
    assert url == "http://127.0.0.1:9/login/ann?a=7&b=x+y"
    assert kw == {"headers": {"X-User": "ann"}, "json": {"user": "ann", "n": 7}}


def test_build_request_form_and_absolute_url():
    f = flow(request={"method": "POST", "url": "http://127.0.0.1:1/in.php?json=1", "query": {"k": "v"},
                      "form": {"user": "${user}", "n": "${n}"}})
    url, kw = build_request(f, CTX)
    assert url == "http://127.0.0.1:1/in.php?json=1&k=v"
    assert kw["data"] == "user=ann&n=7"
    assert kw["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_error_text():
    assert error_text(TimeoutError()) == "timeout"
    assert error_text(ConnectionRefusedError(111, "refused")).startswith("ConnectionRefusedError")
    assert error_text(None) == "no answer"


def test_unreached_is_a_failed_connect_only():
    import socket

    import requests
    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    except requests.ConnectionError as e:
        refused = e
    assert unreached(refused)
    assert not unreached(TimeoutError()) and not unreached(None)
    assert not unreached(requests.ConnectionError("Connection aborted: RemoteDisconnected"))


@pytest.fixture()
def host(tmp_path):
    with HostThread(services={"captcha": {}}, run_dir=str(tmp_path)) as ht:
        yield ht


def test_var_kinds_without_an_event_loop(host):
    control = host.host.urls["control"]
    maker = SyncVarMaker(3, control, requests.Session(), {"captcha": host.host.services["captcha"].config_dict()})
    values = maker.values({"t": {"captcha_ticket": {}}, "bad": {"bad_ticket": {"kind": "wrong_randstr"}},
                           "dr": {"dr_ticket": {"appid": "wrong"}}, "h": {"random_hex": 8},
                           "c": {"choice": ["a", "b"]}, "name": {"faker": "name"}})
    assert values["t"]["ticket"] and values["t"]["randstr"]
    assert values["bad"]["bad"] == "wrong_randstr" and values["bad"]["ticket"]
    assert values["dr"]["valid"] is False and values["dr"]["ticket"].startswith("terror_")
    assert len(values["h"]) == 8 and values["c"] in ("a", "b") and values["name"]
    # the tickets are real: the mock issued them (journaled by the control API's ticket route)
    issued = [e for e in read_events(host.host.journal.read_since(0)) if "ticket" in json.dumps(e.to_dict())]
    assert any(values["t"]["ticket"] in json.dumps(e.to_dict()) for e in issued)
    # seeded: the same seed makes the same data
    a, b = SyncVarMaker(9, control, requests.Session(), {}), SyncVarMaker(9, control, requests.Session(), {})
    assert [a.make("random_hex", 12) for _ in range(3)] == [b.make("random_hex", 12) for _ in range(3)]


def test_ticket_failure_is_an_error(host):
    maker = SyncVarMaker(1, host.host.urls["control"] + "/nowhere", requests.Session(), {})
    with pytest.raises(RuntimeError, match="captcha ticket issue failed"):
        maker.make("captcha_ticket", {})


def test_driver_journal_batches_into_the_run_journal(host):
    dj = DriverJournal(host.host.urls["control"], max_batch=3)
    for i in range(7):
        dj.add({"kind": "driver", "flow": "f", "n": i + 1, "status": 200})
    dj.flush()
    assert dj.figures() == {"requests": 7, "journaled": 7, "lost": 0, "queued": 0}
    driver = [e for e in read_events(host.host.journal.read_since(0)) if e.kind == "driver"]
    assert [e["n"] for e in driver] == list(range(1, 8))


def test_driver_journal_counts_what_it_could_not_deliver(host):
    dj = DriverJournal(host.host.urls["control"])
    dj.add({"kind": "driver", "n": 1})
    dj.add({"no kind": True})  # the control API refuses the whole batch (400), every retry
    dj.flush()
    assert dj.figures() == {"requests": 2, "journaled": 0, "lost": 2, "queued": 0}


def args(**kw):
    import argparse
    base = dict(worker=False, master=False, ui=False, web_port=None, master_host=None, master_port=None,
                master_bind_host="127.0.0.1", master_bind_port=None, expect_workers=None, users=10,
                spawn_rate=None, run_time=None, time_scale=1.0, locust_args=[])
    return argparse.Namespace(**{**base, **kw})


def scenario(timeline=(), traffic=({"name": "f", "request": {"path": "/"}},)):
    return Scenario.model_validate({"name": "s", "timeline": list(timeline), "traffic": list(traffic)})


def test_locust_command_lines():
    sc = scenario(timeline=[{"at": "20s", "note": "x"}])
    assert default_run_time(sc, 1.0) == 22.0 and default_run_time(sc, 0.1) == 10.0
    argv = build_argv(args(users=5, locust_args=["--stop-timeout", "3"]), sc, "/r/run")
    assert argv[1:3] == ["-m", "locust"] and argv[4].endswith(os.path.join("harness", "load", "locustfile.py"))
    assert "--headless" in argv and argv[-2:] == ["--stop-timeout", "3"]
    assert argv[argv.index("--users") + 1] == "5" and argv[argv.index("--spawn-rate") + 1] == "5"
    assert argv[argv.index("--run-time") + 1] == "22s"
    assert argv[argv.index("--html") + 1] == "/r/run/locust.html" and argv[argv.index("--csv") + 1] == "/r/run/locust"
    master = build_argv(args(master=True, expect_workers=2, master_bind_port=5599, ui=True), sc, "/r/run")
    assert "--headless" not in master and "--master" in master
    assert master[master.index("--web-host") + 1] == "127.0.0.1"
    assert master[master.index("--master-bind-host") + 1] == "127.0.0.1"
    assert master[master.index("--expect-workers") + 1] == "2"
    worker = build_argv(args(worker=True, master_port=5599), sc, None)
    assert "--worker" in worker and "--html" not in worker and "--users" not in worker


def test_user_classes_from_the_scenario(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(textwrap.dedent("""\
        name: s
        traffic:
          - {name: login, count: 12, timeout: 3s, request: {path: /login}}
          - {name: bad-login, count: 4, request: {path: /login}}
          - {name: disabled, count: 0, request: {path: /}}
          - {name: steady, rate: 2, duration: 10s, request: {path: /}}
    """))
    probe = textwrap.dedent("""\
        import json
        import harness.load.locustfile as lf
        from locust.util.load_locustfile import is_user_class
        users = {k: v for k, v in vars(lf).items() if is_user_class(v)}
        print(json.dumps({k: [v.weight, v.flow.name, v.network_timeout, v.wait_time(None)] for k, v in users.items()}))
    """)
    env = {**os.environ, "HARNESS_LOAD_OPTIONS": json.dumps({"scenario": str(f), "wait": "1"})}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"Flow_login": [12, "login", 3.0, 1.0], "Flow_bad_login": [4, "bad-login", 10.0, 1.0],
                   "Flow_steady": [20, "steady", 10.0, 1.0]}


@pytest.mark.parametrize("argv, users, extra", [
    (["s.yaml", "-u", "3", "--", "--stop-timeout", "5", "-u", "9"], 3, ["--stop-timeout", "5", "-u", "9"]),
    (["s.yaml", "--stop-timeout", "5", "-u", "4", "--only-summary"], 4, ["--stop-timeout", "5", "--only-summary"]),
    (["s.yaml"], 10, []),
])
def test_unknown_options_pass_through_to_locust(argv, users, extra):
    from harness.cli import build_parser
    ns = build_parser().parse_args(["load", *argv])
    assert (ns.scenario, ns.users, ns.locust_args) == ("s.yaml", users, extra)
