"""An answer the mock delivered to a proxy that never passed it on did not reach the integration.
Kept by mitmproxy (a ``drop_response``): the verdict reads it so (``via`` on the mock's request,
``proxy.flow`` with no status). Held by a Toxiproxy latency past the client's timeout (no trace at the
mock): the task is not judged when its id was never polled. Either way a correct solver client is not
judged to have lost a task whose id it never saw; before, both runs failed ``no_lost_solutions`` on
the reference client."""

import json
import os
import subprocess
import sys

# four solves against the reference solver client, a fault on its solver link from the start
SCENARIO = """\
name: {name}
extends: {base}
seed: 11
links: [{link}]
traffic:
  - name: solve
    count: 4
    rate: 4
    request: "${{profile.solver.submit}}"
timeline:
  - at: 0s
    add_rules:
      - {rule}
expect:
  - no_lost_solutions: {{deadline: {deadline}}}
  - solutions_used_exactly_once: {{deadline: {deadline}}}
"""
DROPPED = {"name": "inphp-dropped-at-proxy", "link": "{name: integration->solver, mitm: true}", "deadline": "6s",
           "rule": "{id: drop-first-answer, match: {link: integration->solver, action: in.php}, "
                   "effect: {drop_response: true}, schedule: {times: 1}}"}
# the answers of the first second held past the client's 3 s timeout by a Toxiproxy latency
HELD = {"name": "inphp-held-by-latency", "link": "integration->solver", "deadline": "8s",
        "rule": "{match: {link: integration->solver}, effect: {toxic: latency, attributes: {latency: 5000}, "
                "stream: downstream}, schedule: {window: {start: 0s, end: 4s}}}"}


def _run(tmp_path, case):
    sc = tmp_path / "sc.yaml"
    sc.write_text(SCENARIO.format(base=os.path.abspath("scenarios/_targets/solver_client.yaml"), **case))
    run = subprocess.run([sys.executable, "-m", "harness", "run", str(sc), "--report-dir", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.load(open(tmp_path / "r" / "latest" / "summary.json"))
    return next(i for i in summary["invariants"] if i["name"] == "no_lost_solutions")


def test_an_in_php_answer_held_by_a_latency_past_the_timeout_is_not_judged(tmp_path):
    lost = _run(tmp_path, HELD)
    assert lost["counts"]["unclaimed"] >= 1 and lost["counts"]["lost"] == 0 and lost["counts"]["ok"] >= 4


def test_an_in_php_answer_dropped_at_the_proxy_is_unclaimed_not_lost(tmp_path):
    lost = _run(tmp_path, DROPPED)
    assert lost["counts"]["unclaimed"] == 1 and lost["counts"]["lost"] == 0 and lost["counts"]["ok"] >= 4
    events = [json.loads(line) for line in open(tmp_path / "r" / "latest" / "journal.jsonl")]
    (dropped,) = [e for e in events if e["kind"] == "proxy.flow" and e["outcome"] == "dropped"]
    carried = [e for e in events if e["kind"] == "request" and e.get("via") == dropped["fid"]]
    assert [e["action"] for e in carried] == ["in.php"]
