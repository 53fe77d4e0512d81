"""An answer the mock delivered to mitmproxy, which the proxy then kept from the client (a
``drop_response``), never reached the integration: the verdict reads it so (``via`` on the mock's
request, ``proxy.flow`` with no status), and a correct solver client is not judged to have lost the
task whose id it never saw. Before, the run below failed ``no_lost_solutions`` on the reference client."""

import json
import os
import subprocess
import sys

SCENARIO = """\
name: inphp-dropped-at-proxy
extends: {base}
seed: 11
links:
  - {{name: integration->solver, mitm: true}}
traffic:
  - name: solve
    count: 4
    rate: 4
    request: "${{profile.solver.submit}}"
timeline:
  - at: 0s
    add_rules:
      - id: drop-first-answer
        match: {{link: integration->solver, action: in.php}}
        effect: {{drop_response: true}}
        schedule: {{times: 1}}
expect:
  - no_lost_solutions: {{deadline: 6s}}
  - solutions_used_exactly_once: {{deadline: 6s}}
"""


def test_an_in_php_answer_dropped_at_the_proxy_is_unclaimed_not_lost(tmp_path):
    sc = tmp_path / "drop.yaml"
    sc.write_text(SCENARIO.format(base=os.path.abspath("scenarios/_targets/solver_client.yaml")))
    run = subprocess.run([sys.executable, "-m", "harness", "run", str(sc), "--report-dir", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.load(open(tmp_path / "r" / "latest" / "summary.json"))
    lost = next(i for i in summary["invariants"] if i["name"] == "no_lost_solutions")
    assert lost["counts"]["unclaimed"] == 1 and lost["counts"]["lost"] == 0 and lost["counts"]["ok"] >= 4
    events = [json.loads(line) for line in open(tmp_path / "r" / "latest" / "journal.jsonl")]
    (dropped,) = [e for e in events if e["kind"] == "proxy.flow" and e["outcome"] == "dropped"]
    carried = [e for e in events if e["kind"] == "request" and e.get("via") == dropped["fid"]]
    assert [e["action"] for e in carried] == ["in.php"]
