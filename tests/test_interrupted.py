"""SIGINT / SIGTERM of ``harness run``: everything stops as before, and the run still leaves its
report, marked INTERRUPTED and incomplete, with ``reports/latest`` on it; replay refuses it."""

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

LONG = """\
name: long
extends: {base}
traffic:
  - name: login
    duration: 60s
    rate: 5
    vars: {{t: {{captcha_ticket: {{}}}}}}
    request: {{method: POST, path: /login, json: {{ticket: "${{t.ticket}}", randstr: "${{t.randstr}}"}}}}
expect:
  - all_requests_succeeded: {{}}
"""


def harness(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout)


def wait_for_traffic(reports, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        found = list(reports.glob("*/journal.jsonl"))
        if found and found[0].read_bytes().count(b'"kind":"driver"') >= 3:
            return found[0].parent
        time.sleep(0.2)
    raise AssertionError("no traffic within 30 s")


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_leaves_an_interrupted_report(tmp_path, sig, code):
    sc = tmp_path / "long.yaml"
    sc.write_text(LONG.format(base=os.path.abspath("scenarios/_targets/captcha_backend.yaml")))
    reports = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(sc), "--report-dir", str(reports)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_dir = wait_for_traffic(reports, proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, out + err
    assert out.startswith("INTERRUPTED")
    assert os.path.realpath(reports / "latest") == str(run_dir.resolve())
    summary = json.load(open(run_dir / "summary.json"))
    assert summary["state"] == "INTERRUPTED" and summary["complete"] is False and summary["ok"] is False
    assert summary["interrupted_by"] == sig.name and summary["exit_code"] == code
    assert summary["verdict_so_far"] == "PASS", summary["invariants"]  # every request so far succeeded
    assert summary["invariants"] and summary["invariants"][0]["ok"] is True
    suite = ET.parse(run_dir / "junit.xml").getroot()[0]
    assert [e.get("type") for e in suite.iter("error")] == ["interrupted"]
    page = (run_dir / "report.html").read_text()
    assert "INTERRUPTED" in page and "incomplete run" in page

    again = harness("replay", str(run_dir))
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "interrupted" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr
    assert sorted(p.name for p in reports.iterdir()) == sorted([run_dir.name, "latest"])  # nothing re-ran


def test_replay_of_a_folder_without_summary_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"run_id": "x", "seed": 1}))
    (run_dir / "scenario.json").write_text(json.dumps({"name": "x", "target": {"url": "http://127.0.0.1:9"}}))
    out = harness("replay", str(run_dir))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "no summary.json" in out.stderr, out.stderr
    assert len(os.listdir(tmp_path)) == 1  # nothing was run


def test_ctrl_c_in_demo_reports_the_variants_done(tmp_path):
    """`harness demo` interrupted in its second variant: the first one's results are in the suite
    report (marked INTERRUPTED), exit 130, nothing left running."""
    reports = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "demo", "--integration", "captcha_backend",
                             "--variant", "correct", "--variant", "fail_closed", "--report-dir", str(reports)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in proc.stdout:   # the progress lines
            seen.append(line)
            if "captcha_backend / fail_closed" in line:
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(seen) + out
    assert proc.returncode == 130, out
    assert "INTERRUPTED (SIGINT during captcha_backend / fail_closed): 1 of 2 variants ran" in out
    summary = json.loads((reports / "latest" / "summary.json").read_text())
    assert summary["state"] == "INTERRUPTED"
    assert len(summary["runs"]) == 12 and all(r["ok"] for r in summary["runs"])   # the correct variant's
    assert "variants as expected; INTERRUPTED" in (reports / "latest" / "report.html").read_text()
