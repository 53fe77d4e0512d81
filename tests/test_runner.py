"""The runner end to end against the reference captcha backend: verdicts, reports, replay, cleanup."""

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import psutil
import pytest

from harness.journal import read_events

SCENARIO = """\
name: replay-probe
extends: {base}
seed: 11
traffic:
  - name: login
    count: 14
    vars:
      t: {{captcha_ticket: {{}}}}
    request: {{method: POST, path: /login, json: {{ticket: "${{t.ticket}}", randstr: "${{t.randstr}}"}}}}
timeline:
  - at: 0s
    add_rules:
      - match: {{service: captcha, action: DescribeCaptchaResult}}
        effect: {{error: InternalError}}
        schedule: {{probability: 0.4}}
  - after: {{kind: response, service: captcha, rule: {{glob: "r*"}}}}
    note: first fault seen
expect:
  - verification_fail_open: {{max_latency: 3s}}
"""


@pytest.fixture()
def scenario(tmp_path):
    f = tmp_path / "probe.yaml"
    f.write_text(SCENARIO.format(base=os.path.abspath("scenarios/_targets/captcha_backend.yaml")))
    return f


def harness(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout)


def decisions(run_dir):
    return [(e["rule"], e["n"], e["fired"]) for e in read_events(os.path.join(run_dir, "journal.jsonl"))
            if e.kind == "decision"]


def test_run_report_and_replay(scenario, tmp_path):
    reports = tmp_path / "reports"
    ok = harness("run", str(scenario), "--report-dir", str(reports))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    run_dir = os.path.realpath(reports / "latest")
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert summary["ok"] and summary["seed"] == 11 and summary["invariants"][0]["name"] == "verification_fail_open"
    suites = ET.parse(os.path.join(run_dir, "junit.xml")).getroot()
    assert suites[0].get("failures") == "0" and suites[0].get("tests") == "1"
    page = open(os.path.join(run_dir, "report.html")).read()
    assert "<svg" in page and "verification_fail_open" in page and "http://" not in page.split("<svg")[0]
    events = read_events(os.path.join(run_dir, "journal.jsonl"))
    notes = [e for e in events if e.kind == "step" and e.get("step") == "timeline.note"]
    first_fault = next(e for e in events if e.kind == "response" and e.get("rule"))
    assert len(notes) == 1 and notes[0].seq > first_fault.seq
    fired = [d for d in decisions(run_dir) if d[2]]
    assert 0 < len(fired) < 14  # the probabilistic rule fired for some, not all

    # the same run against the fail-closed bug fails; its replay fails again with the same decisions
    bad = harness("run", str(scenario), "--report-dir", str(reports), "--variant", "fail_closed")
    assert bad.returncode == 1
    bad_dir = os.path.realpath(reports / "latest")
    again = harness("replay", bad_dir)
    assert again.returncode == 1, again.stdout + again.stderr
    assert f"decisions {len(decisions(bad_dir))}/{len(decisions(bad_dir))} identical" in again.stdout
    assert "same as the original" in again.stdout
    new_dir = os.path.realpath(reports / "latest")
    assert new_dir != bad_dir and decisions(new_dir) == decisions(bad_dir)
    assert decisions(new_dir) == decisions(run_dir)  # same seed, same order → same decisions

    other = harness("run", str(scenario), "--report-dir", str(reports), "--seed", "12")
    assert decisions(os.path.realpath(reports / "latest")) != decisions(run_dir)


def _children_of(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_ctrl_c_stops_everything(tmp_path):
    sc = tmp_path / "long.yaml"
    sc.write_text(f"""\
name: long
extends: {os.path.abspath('scenarios/_targets/captcha_backend.yaml')}
traffic:
  - name: login
    duration: 60s
    rate: 5
    vars: {{t: {{captcha_ticket: {{}}}}}}
    request: {{method: POST, path: /login, json: {{ticket: "${{t.ticket}}", randstr: "${{t.randstr}}"}}}}
""")
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(sc), "--report-dir", str(tmp_path / "r")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    kids = []
    while time.time() < deadline:
        kids = _children_of(proc.pid)
        ports = [c.laddr.port for c in psutil.Process(proc.pid).net_connections("tcp") if c.status == "LISTEN"]
        if kids and len(ports) >= 2 and list((tmp_path / "r").glob("*/journal.jsonl")):
            journal = next((tmp_path / "r").glob("*/journal.jsonl"))
            if b'"kind":"driver"' in journal.read_bytes():
                break
        time.sleep(0.2)
    assert kids, "target process never started"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert proc.returncode == 130
    time.sleep(0.3)
    assert not [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            import socket
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
