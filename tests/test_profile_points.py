"""Issue 22, points of the second set, each against one of the new reference integrations through its
profile (real processes, real mocks; scenario files in tests/profile_points/):

- 5.3 an app's own scenario overrides a catalogue flow by name (examples/node_login, Node.js);
- 5.4 a ``journal_count`` on ``body.request`` matches the plain-text replies of the 2captcha SDK
  (examples/twocaptcha_client), and a wrong count fails;
- 5.5 settling watches a task that ended ERROR_CAPTCHA_UNSOLVABLE, so a client that polls it on is
  caught after the traffic is over (examples/twocaptcha_client, with a planted bug);
- ``harness load SCENARIO --profile P`` runs to the end against the profile's target;
- a catalogue scenario against a url-only profile: the integration already runs (started here), and
  reaches this run's captcha mock at the fixed port the profile gives it (``services.captcha.port``);
  a port already taken is exit 2 naming the profile's line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from harness.journal import read_events
from harness.ports import free_port
from harness.scenario import load_scenario
from harness.verdict import evaluate
from tests.test_load_runs import leftovers
from tests.test_load_runs import run as harness_load
from tests.test_profiles import harness
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parent.parent
POINTS = REPO / "tests" / "profile_points"
NODE_LOGIN = REPO / "examples" / "node_login"
CATALOGUE_LOGIN = REPO / "scenarios" / "captcha" / "healthy-enforces.yaml"


@pytest.fixture()
def node_modules():
    if not (NODE_LOGIN / "node_modules" / ".installed").exists():
        pytest.fail(f"{NODE_LOGIN / 'node_modules'} is missing: run `make example-apps` (part of `make setup`)")


def results(outcome):
    return {r.name: r for r in outcome.verdict.results}


def steps(events, name):
    return [e for e in events if e.kind == "step" and e.get("step") == name]


# --- 5.3: flows mergeable by name --------------------------------------------------------------

def test_an_apps_scenario_overrides_a_catalogue_flow_by_name(run_scenario, node_modules):
    """node-login-good-flow-merged.yaml extends the catalogue's healthy-enforces and gives only
    ``{name: good, count: 2}``: the run sends 2 good logins (the catalogue's flow has 5) with the flow's
    inherited vars and request (the profile's POST /api/session), and the other flows unchanged."""
    parent = load_scenario(str(CATALOGUE_LOGIN), profile=str(NODE_LOGIN / "profile.yaml"))
    catalogue = {f.name: f for f in parent.traffic}
    assert catalogue["good"].count == 5
    outcome = run_scenario(str(POINTS / "node-login-good-flow-merged.yaml"))
    assert outcome.ok, outcome.explain()
    events = outcome.events()
    assert steps(events, "target_started")[0]["argv"] == ["node", "server.js"]
    driver = [e for e in events if e.kind == "driver"]
    others = {n: f.count for n, f in catalogue.items() if n != "good"}
    assert Counter(e["flow"] for e in driver) == {"good": 2, **others}
    for e in driver:  # every flow, the overridden one too, drives the profile's login route
        assert (e["method"], urlsplit(e["url"]).path) == ("POST", "/api/session"), e
        assert e["status"] == (201 if e["flow"] == "good" else 422), e
    assert {e["var_kinds"]["t"] for e in driver if e["flow"] == "good"} == {"captcha_ticket"}  # inherited vars
    ran = {f["name"]: f for f in json.loads((Path(outcome.run_dir) / "scenario.json").read_text())["traffic"]}
    assert ran["good"]["count"] == 2 and ran["good"]["vars"] == {"t": {"captcha_ticket": {}}}
    assert ran["good"]["request"] == catalogue["good"].request.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert results(outcome)["verification_enforced"].counts == {"checked": len(driver), "wrong": 0}


# --- 5.4: body.request on plain-text replies --------------------------------------------------

def test_journal_count_on_body_request_matches_the_sdks_plain_text_replies(run_scenario):
    outcome = run_scenario(str(POINTS / "twocaptcha-plain-text-replies.yaml"))
    assert outcome.ok, outcome.explain()
    events = outcome.events()
    answers = [e for e in events if e.kind == "response" and e.get("action") in ("in.php", "res.php")]
    # the SDK speaks plain text: every answer it got is a string, none a JSON object
    assert answers and all(isinstance(e["body"], str) for e in answers), [e["body"] for e in answers]
    assert sorted(e["body"] for e in answers if e["action"] == "in.php" and e.get("rule") == "busy") == \
        ["ERROR_NO_SLOT_AVAILABLE"] * 2
    counts = [r for r in outcome.verdict.results if r.name == "journal_count"]
    assert [r.ok for r in counts] == [True, True, True]
    # body.request of `OK|<id>` is the id: each task the solver took is found by its id
    where = {"kind": "response", "service": "solver", "action": "in.php"}
    tasks = [str(e["task"]) for e in events if e.kind == "solution"]
    assert len(tasks) == 2
    by_id = evaluate([{"journal_count": {"where": {**where, "body.request": t}, "min": 1, "max": 1}} for t in tasks],
                     events).results
    assert [r.ok for r in by_id] == [True, True]
    # a wrong count on the same journal fails, naming what it saw
    busy = {**where, "body.request": "ERROR_NO_SLOT_AVAILABLE"}
    too_many, too_few = evaluate([{"journal_count": {"where": busy, "min": 3}},
                                  {"journal_count": {"where": busy, "max": 1}}], events).results
    assert not too_many.ok and not too_few.ok
    assert too_many.summary.startswith("2 events match") and too_few.summary.startswith("2 events match")


# --- 5.5: settling watches polls of tasks that ended unsolvable ---------------------------------

def unsolvable_polls(events):
    """(when the unsolvable task ended, the times it was polled, when the caller's request ended)."""
    (end,) = [e for e in events if e.kind == "solution" and e.get("outcome") == "unsolvable"]
    polls = [e.t for e in events if e.kind == "request" and e.get("action") == "res.php"
             and str((e.get("params") or {}).get("id")) == str(end["task"])]
    (driver,) = [e for e in events if e.kind == "driver"]
    return end.t, polls, driver.t


def driver_timed_out(events):
    return [e.get("error") for e in events if e.kind == "driver"] == ["timeout"]


@pytest.mark.parametrize("variant", ["", "unsolvable_as_not_ready"])
def test_settling_watches_a_task_that_ended_unsolvable(run_scenario, variant):
    """The caller gives up after 1 s; poll_rate_bounded {max_per_task: 3, watch: 2s} keeps the run
    open. The correct client polls the task once after its end (to learn it) and the run still
    watches it for 2 s; the planted bug polls it on, and its polls after the traffic was over exceed
    the bound."""
    outcome = run_scenario(str(POINTS / "twocaptcha-unsolvable-polled.yaml"), variant=variant)
    events = outcome.events()
    ended, polls, caller_gone = unsolvable_polls(events)
    finished = steps(events, "run_finished")[0].t
    bound = results(outcome)["poll_rate_bounded"]
    assert driver_timed_out(events)
    if not variant:
        assert outcome.ok, outcome.explain()
        assert len([t for t in polls if t > ended]) == 1, polls
        assert finished - max(polls) >= 1.95, (finished, polls)   # watched for 2 s after its last poll
        return
    assert not bound.ok, outcome.explain()
    (item,) = bound.evidence
    assert item["polls"] == len(polls) > 3 and item["after_unsolvable"] == len([t for t in polls if t > ended]) >= 3
    assert len([t for t in polls if t > caller_gone]) >= 2, (polls, caller_gone)  # seen only while settling


# --- harness load --profile ---------------------------------------------------------------------

def test_load_runs_a_catalogue_scenario_against_a_profile_from_the_command_line(tmp_path, node_modules):
    reports = tmp_path / "reports"
    code, out = harness_load([str(CATALOGUE_LOGIN), "--profile", str(NODE_LOGIN / "profile.yaml"), "--users", "3",
                              "--run-time", "3s", "--wait", "0.1:0.3", "--report-dir", str(reports), "-q"])
    assert code == 0, out
    run_dir = (reports / "latest").resolve()
    load = json.loads((run_dir / "load.json").read_text())
    assert load["state"] == "PASS" and load["complete"] is True
    events = read_events(str(run_dir / "journal.jsonl"))
    (started,) = steps(events, "target_started")
    assert started["argv"] == ["node", "server.js"]              # the profile's target, not the catalogue's
    (ready,) = steps(events, "run_ready")
    driver = [e for e in events if e.kind == "driver"]
    assert len(driver) == load["load"]["locust"]["requests"] > 10
    assert {e.get("driver") for e in driver} == {"locust"}
    for e in driver:
        assert e["url"] == ready["target"] + "/api/session" and e["method"] == "POST", e
        assert e["status"] == (201 if e["flow"] == "good" else 422), e
    enforced = next(i for i in load["invariants"] if i["name"] == "verification_enforced")
    assert enforced["ok"] and enforced["params"] == {"allowed_status": [201], "denied_status": [422]}
    assert enforced["counts"]["checked"] == len(driver)
    assert not leftovers(str(tmp_path))


# --- a url-only profile -----------------------------------------------------------------------

@pytest.fixture()
def running_node_login(tmp_path, node_modules):
    """examples/node_login started here, as its profile would start it, on a free port, its captcha
    mock expected at a fixed port; yields (its url, that port, the process)."""
    port, mock_port = free_port(), free_port()
    env = yaml.safe_load((NODE_LOGIN / "profile.yaml").read_text())["target"]["env"]
    templated = {k for k, v in env.items() if "${" in v}
    assert templated == {"LISTEN_PORT", "LOGIN_VARIANT", "TC_CAPTCHA_HOST"}, templated  # the ones filled in here
    env = {**os.environ, **{k: v for k, v in env.items() if k not in templated},
           "LISTEN_PORT": str(port), "LOGIN_VARIANT": "correct", "TC_CAPTCHA_HOST": f"127.0.0.1:{mock_port}"}
    proc = subprocess.Popen(["node", "server.js"], cwd=NODE_LOGIN, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: proc.poll() is not None or _answers(f"http://127.0.0.1:{port}/healthz"), timeout=20,
                   what="node_login to listen")
        assert proc.poll() is None, f"node_login exited with {proc.returncode}"
        yield f"http://127.0.0.1:{port}", mock_port, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_a_catalogue_scenario_runs_against_a_url_only_profile(tmp_path, running_node_login):
    url, mock_port, proc = running_node_login
    profile = yaml.safe_load((NODE_LOGIN / "profile.yaml").read_text())
    profile["target"] = {"url": url, "ready": {"path": "/healthz", "status": 200, "timeout": "10s"}}
    profile["services"]["captcha"]["port"] = mock_port   # where the running app looks for it
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    r = harness("run", str(CATALOGUE_LOGIN), "--profile", "profile.yaml", "-q", "--report-dir", "reports",
                cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = (tmp_path / "reports" / "latest").resolve()
    events = read_events(str(run_dir / "journal.jsonl"))
    assert steps(events, "target_started") == [] and steps(events, "run_ready")[0]["target"] == url
    driver = [e for e in events if e.kind == "driver"]
    catalogue = load_scenario(str(CATALOGUE_LOGIN))
    assert len(driver) == sum(f.count for f in catalogue.traffic)
    for e in driver:
        assert e["url"] == url + "/api/session" and e["status"] == (201 if e["flow"] == "good" else 422), e
    # the running app verified every login at this run's captcha mock, on the fixed port
    assert steps(events, "host_started")[0]["urls"]["captcha"] == f"http://127.0.0.1:{mock_port}"
    calls = [e for e in events if e.kind == "request" and e.get("action") == "DescribeCaptchaResult"]
    assert len(calls) >= len(driver)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {i["name"]: i["ok"] for i in summary["invariants"]} == {"verification_enforced": True,
                                                                   "all_requests_succeeded": True}
    assert proc.poll() is None        # not the harness's process: it is still running after the run
    # the fixed port taken (by the app itself here): one line naming the profile's line, nothing run
    profile["services"]["captcha"]["port"] = int(url.rsplit(":", 1)[1])
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    r = harness("run", str(CATALOGUE_LOGIN), "--profile", "profile.yaml", "-q", "--report-dir", "reports2",
                cwd=tmp_path)
    assert r.returncode == 2 and "Address already in use" in r.stderr, r.stdout + r.stderr
    assert "harness run: profile.yaml:" in r.stderr and ": services.captcha.port: cannot listen on" in r.stderr
    assert not list((tmp_path / "reports2").glob("*/journal.jsonl"))   # nothing was run


def test_fixed_ports_must_name_a_mock_of_the_scenario(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nservices:\n  captcha: {}\nports:\n  solver: 18081\ntarget: {url: 'http://127.0.0.1:1'}\n")
    with pytest.raises(Exception, match=r"s\.yaml:5: ports\.solver: not a mock of this scenario \(captcha\)"):
        load_scenario(str(path))
    path.write_text("name: s\nservices:\n  captcha: {}\nports:\n  captcha: 70000\ntarget: {url: 'http://127.0.0.1:1'}\n")
    with pytest.raises(Exception, match=r"s\.yaml:5: ports\.captcha: .*65535"):
        load_scenario(str(path))


def test_part_of_a_profile_request_cannot_be_merged_silently(tmp_path):
    """A catalogue flow's request is ``${profile.captcha.login}``, filled in after ``extends``: a child
    flow giving only a header would have replaced the whole request (a GET /) without a word."""
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {CATALOGUE_LOGIN}\nname: s\ntraffic:\n  - name: good\n"
                    "    request: {headers: {X-Trace: '1'}}\n")
    with pytest.raises(Exception, match=r"s\.yaml:5: traffic\[0\]\.request: flow 'good' inherits "
                                        r"\$\{profile\.captcha\.login\}.*give the whole request"):
        load_scenario(str(path), profile=str(NODE_LOGIN / "profile.yaml"))
    # the whole request is fine
    path.write_text(f"extends: {CATALOGUE_LOGIN}\nname: s\ntraffic:\n  - name: good\n"
                    "    request: {method: POST, path: /api/session}\n")
    assert load_scenario(str(path), profile=str(NODE_LOGIN / "profile.yaml")).traffic[0].request.path == "/api/session"
