"""``harness load`` end to end: real locust (standalone, and a master with two workers) against the
reference captcha backend, the timeline's faults at their times, driver events journaled one per
locust request, the verdict as the exit code, reports side by side, nothing left running."""

import csv
import json
import os
import signal
import subprocess
import sys

import psutil
import pytest

from harness.journal import read_events
from harness.ports import free_port

SCENARIO = """\
name: load-probe
extends: {base}
seed: 5
traffic:
  - name: login
    count: 12
    vars:
      t: {{captcha_ticket: {{}}}}
    request: {{method: POST, path: /login, json: {{ticket: "${{t.ticket}}", randstr: "${{t.randstr}}", user: "u${{n}}"}}}}
  - name: bad-login
    count: 4
    vars:
      t: {{bad_ticket: {{kind: unknown}}}}
    request: {{method: POST, path: /login, json: {{ticket: "${{t.ticket}}", randstr: "${{t.randstr}}"}}}}
timeline:
  - at: 1s
    add_rules:
      - id: internal-error
        match: {{service: captcha, action: DescribeCaptchaResult}}
        effect: {{error: InternalError}}
  - at: 2.5s
    remove_rules: [internal-error]
  - at: 60s
    note: after the load; never reached
expect:
  - verification_fail_open: {{flow: login, max_latency: 3s}}
  - verification_enforced: {{}}
"""


@pytest.fixture()
def scenario(tmp_path):
    f = tmp_path / "load-probe.yaml"
    f.write_text(SCENARIO.format(base=os.path.abspath("scenarios/_targets/captcha_backend.yaml")))
    return str(f)


def harness_cmd(*args):
    return [sys.executable, "-m", "harness", "load", *args]


def run(args, timeout=60):
    proc = subprocess.Popen(harness_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        stop(proc)
    return proc.returncode, out


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # locust's shutdown finishes the stage in order
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def leftovers(marker):
    """Processes (the stage, target, workers…) whose environment names this test's tmp dir."""
    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if marker in p.environ().get("HARNESS_LOAD_OPTIONS", "") and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.Error, OSError):
            continue
    return found


def run_dir_of(reports):
    return os.path.realpath(os.path.join(reports, "latest"))


def check_run(run_dir, exit_code):
    load = json.load(open(os.path.join(run_dir, "load.json")))
    events = read_events(os.path.join(run_dir, "journal.jsonl"))
    driver = [e for e in events if e.kind == "driver"]
    locust = load["load"]["locust"]
    # one driver event per locust request, none lost on the way
    assert locust["requests"] > 0
    assert len(driver) == locust["requests"] == load["load"]["driver_events"]
    assert locust["driver"]["lost"] == 0 and locust["driver"]["journaled"] == locust["requests"]
    with open(os.path.join(run_dir, "locust_stats.csv")) as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    assert int(rows["Aggregated"]["Request Count"]) == locust["requests"]  # the final figures, SIGTERM too
    assert {e["flow"] for e in driver} == {"login", "bad-login"}
    for name in ("report.html", "summary.json", "junit.xml", "locust.html"):
        assert os.path.getsize(os.path.join(run_dir, name)) > 0, name
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert summary["ok"] is (exit_code == 0)
    return load, events, driver


def step_times(events):
    start = next(e.t for e in events if e.kind == "step" and e["step"] == "run_started")
    return start, {e["step"]: e.t - start for e in events if e.kind == "step" and e["step"].startswith("timeline")}


def test_standalone_faults_on_time_verdict_and_reports(scenario, tmp_path):
    reports = str(tmp_path / "reports")
    code, out = run([scenario, "--users", "4", "--run-time", "4s", "--wait", "0.1:0.3", "--report-dir", reports])
    # --run-time 4s cuts the timeline short: its 60 s step never plays, so nothing failed, but the
    # run did not do all it planned: INCONCLUSIVE, with the step named
    assert code == 3, out
    assert "harness load: INCONCLUSIVE load-probe" in out
    assert "timeline step 3 (note at 60s) never played" in out
    run_dir = run_dir_of(reports)
    load, events, driver = check_run(run_dir, code)
    start, steps = step_times(events)
    # the timeline runs on the clock of locust's test start
    assert 0.9 <= steps["timeline.add_rules"] <= 1.8
    assert 2.4 <= steps["timeline.remove_rules"] <= 3.3
    assert "timeline.note" not in steps
    assert any(e.kind == "step" and e["step"] == "timeline_cut_short" for e in events)
    fired = [e.t - start for e in events if e.kind == "decision" and e.get("fired")]
    assert fired and min(fired) >= steps["timeline.add_rules"] and max(fired) <= steps["timeline.remove_rules"]
    # requests went on before, during and after the fault
    assert min(d.t - start for d in driver) < 1.0 and max(d.t - start for d in driver) > 2.6
    verdict = {i["name"]: i["ok"] for i in load["invariants"]}
    assert verdict == {"verification_fail_open": True, "verification_enforced": True}
    assert load["load"]["cpu"]["stage"]["cpu_s"] > 0
    assert not leftovers(str(tmp_path))


def test_failing_invariant_is_a_nonzero_exit(scenario, tmp_path):
    reports = str(tmp_path / "reports")
    code, out = run([scenario, "--users", "3", "--run-time", "3s", "--wait", "0.1:0.2", "--variant", "fail_closed",
                     "--report-dir", reports])
    assert code == 1, out
    assert "FAIL load-probe" in out
    load, _, _ = check_run(run_dir_of(reports), code)
    verdict = {i["name"]: i["ok"] for i in load["invariants"]}
    assert verdict["verification_fail_open"] is False
    assert not leftovers(str(tmp_path))


def test_master_with_two_workers_gives_one_verdict(scenario, tmp_path):
    reports = str(tmp_path / "reports")
    port = free_port()
    workers = [subprocess.Popen(harness_cmd(scenario, "--worker", "--master-port", str(port)),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        code, out = run([scenario, "--master", "--master-bind-port", str(port), "--expect-workers", "2",
                         "--users", "4", "--run-time", "4s", "--wait", "0.05", "--report-dir", reports])
        worker_out = []
        for w in workers:
            o, _ = w.communicate(timeout=30)
            worker_out.append(o)
    finally:
        for w in workers:
            stop(w)
    assert code == 3, out  # INCONCLUSIVE: the 60 s step never played (see the standalone test)
    assert out.count("harness load: INCONCLUSIVE") == 1
    assert all(w.returncode == 0 for w in workers), worker_out
    assert not any("harness load: " + state in o for o in worker_out for state in ("PASS", "FAIL", "INCONCLUSIVE"))
    assert sorted(os.listdir(reports)) == sorted([os.path.basename(run_dir_of(reports)), "latest"])
    load, _, driver = check_run(run_dir_of(reports), code)
    assert {d.get("worker") for d in driver} == {0, 1}
    assert load["load"]["locust"]["driver"]["workers"] == 2
    ns = [d["n"] for d in driver if d["flow"] == "login"]
    assert len(ns) == len(set(ns))  # ${n} stays unique across workers
    # the master's --wait governs the workers' users (theirs defaults to 0.5:1.5 s: at most ~36 requests)
    assert len(driver) > 60, len(driver)
    assert not leftovers(str(tmp_path))


def test_stage_failure_is_a_run_error(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("name: broken\nservices: {captcha: {}}\n"
                 "target: {command: [python, -c, 'import sys; sys.exit(3)'], ready: {timeout: 5s}}\n"
                 "traffic: [{name: x, request: {path: /}}]\n")
    code, out = run([str(f), "--run-time", "2s", "--report-dir", str(tmp_path / "reports")], timeout=45)
    assert code == 2, out
    assert "run error" in out and "exited with code 3" in out
    assert not leftovers(str(tmp_path))


@pytest.mark.parametrize("args, message", [
    (["--master", "--worker"], "--master or --worker"),
    ([], "no such file"),
])
def test_bad_command_lines(args, message, tmp_path):
    target = str(tmp_path / "missing.yaml")
    proc = subprocess.run(harness_cmd(target, *args), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_sigterm_mid_run_still_judges_and_cleans_up(scenario, tmp_path):
    import glob
    import time
    reports = str(tmp_path / "reports")
    proc = subprocess.Popen(harness_cmd(scenario, "--users", "3", "--run-time", "60s", "--wait", "0.1:0.2",
                                        "--report-dir", reports), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        journal = None
        while time.monotonic() < deadline:
            found = glob.glob(os.path.join(reports, "*", "journal.jsonl"))
            if found and open(found[0]).read().count('"kind":"driver"') >= 5:
                journal = found[0]
                break
            time.sleep(0.2)
        assert journal, "no driver events within 30 s"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=40)
    finally:
        stop(proc)
    # a load test stopped after seconds of its 60 is no PASS: INTERRUPTED, exit 143, the verdict so far
    assert proc.returncode == 143, out
    assert "harness load: INTERRUPTED load-probe" in out and "interrupted by SIGTERM" in out
    load, _, _ = check_run(os.path.dirname(journal), proc.returncode)
    assert load["state"] == "INTERRUPTED" and load["complete"] is False and load["interrupted_by"] == "SIGTERM"
    assert load["verdict_so_far"] in ("PASS", "FAIL", "INCONCLUSIVE")
    summary = json.load(open(os.path.join(os.path.dirname(journal), "summary.json")))
    assert summary["state"] == "INTERRUPTED" and summary["exit_code"] == 143
    assert load["load"]["timeline_steps_left"] >= 1  # the 60 s note never came
    assert not leftovers(str(tmp_path))


LINK_SCENARIO = """\
name: load-link-probe
extends: {base}
seed: 6
links: [integration->captcha]
traffic:
  - name: login
    count: 10
    vars:
      t: {{captcha_ticket: {{}}}}
    request: {{method: POST, path: /login, json: {{ticket: "${{t.ticket}}", randstr: "${{t.randstr}}"}}}}
timeline:
  - at: 1s
    cut_link: integration->captcha
  - at: 2.5s
    restore_link: integration->captcha
expect:
  - verification_fail_open: {{flow: login, max_latency: 3s}}
  - journal_count: {{where: {{kind: link, op: down, link: integration->captcha}}, min: 1}}
"""


def test_links_cut_and_restored_through_toxiproxy_under_load(tmp_path):
    f = tmp_path / "link.yaml"
    f.write_text(LINK_SCENARIO.format(base=os.path.abspath("scenarios/_targets/captcha_backend.yaml")))
    reports = str(tmp_path / "reports")
    code, out = run([str(f), "--users", "4", "--run-time", "4s", "--wait", "0.1:0.3", "--report-dir", reports])
    assert code == 0, out
    run_dir = run_dir_of(reports)
    events = read_events(os.path.join(run_dir, "journal.jsonl"))
    start, steps = step_times(events)
    assert 0.9 <= steps["timeline.cut_link"] <= 1.8 and 2.4 <= steps["timeline.restore_link"] <= 3.3
    links = [(e["op"], e.t - start) for e in events if e.kind == "link" and e.get("link") == "integration->captcha"]
    assert [op for op, _ in links][:2] == ["down", "up"], links
    # users went through the proxy before, during and after the cut
    driver = [e for e in events if e.kind == "driver"]
    assert any(d.t - start < 1 for d in driver) and any(1.2 < d.t - start < 2.4 for d in driver)
    assert any(d.t - start > 2.8 for d in driver)
    assert not leftovers(str(tmp_path))
