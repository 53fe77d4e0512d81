"""Run verdicts: PASS only when the faults happened and the integration survived them; INCONCLUSIVE
when a rule never fired, a step never played or an invariant was not exercised; FAIL wins."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

from harness.faults.rules import Rule
from harness.journal import Event
from harness.report.junit import junit_xml
from harness.scenario.model import Step
from harness.testing.scenarios import failure_text
from harness.verdict.base import Result, not_exercised
from harness.verdict.evaluate import Verdict
from harness.verdict.outcome import FAIL, INCONCLUSIVE, INTERRUPTED, PASS, coverage_gaps, judge, worst


def ev(seq, kind, **data):
    return Event(seq=seq, ts=0.0, t=seq * 0.1, kind=kind, data=data)


def steps(*specs):
    return [Step.model_validate(s) for s in specs]


RULE = {"match": {"service": "captcha"}, "effect": {"error": "InternalError"}}


def test_rules_that_never_fired_and_steps_never_played_are_gaps():
    events = [
        ev(1, "rule_added", rule="typo", spec=RULE),
        ev(2, "rule_added", rule="never", spec=RULE),
        ev(3, "rule_added", rule="ok", spec=RULE),
        ev(4, "rule_added", rule="maybe", spec={**RULE, "optional": True}),
        ev(5, "rule_added", rule="toxic", spec=RULE),
        ev(6, "decision", rule="never", fired=False, n=1),
        ev(7, "decision", rule="ok", fired=True, n=1),
        ev(8, "toxic", op="added", rule="toxic"),
        ev(9, "step", step="timeline.add_rules", index=0),
        ev(10, "step", step="timeline_skipped", index=1, why="trigger never seen"),
    ]
    plan = steps({"at": 0, "add_rules": [RULE]}, {"after": {"kind": "x"}, "note": "n"}, {"at": 100, "clear_rules": True})
    assert coverage_gaps(events, plan) == [
        "rule `typo` never matched",
        "rule `never` matched 1 time(s) but never fired",
        "timeline step 2 (note after a trigger) never played: trigger never seen",
        "timeline step 3 (clear_rules at 100s) never played",
    ]


def test_a_reused_rule_id_is_judged_per_rule():
    events = [ev(1, "rule_added", rule="r1", spec=RULE), ev(2, "decision", rule="r1", fired=True, n=1),
              ev(3, "rules_cleared"), ev(4, "rule_added", rule="r1", spec=RULE)]
    assert coverage_gaps(events, []) == ["rule `r1` never matched"]


def test_states_and_exit_codes():
    held = Result("a", True, "held")
    broken = Result("b", False, "broke")
    idle = not_exercised("no_lost_solutions", "the solver produced no solution")
    assert judge(Verdict([held]), []).state == PASS and judge(Verdict([held]), []).exit_code == 0
    inconclusive = judge(Verdict([held, idle]), ["rule `x` never matched"])
    assert inconclusive.state == INCONCLUSIVE and inconclusive.exit_code == 3
    assert inconclusive.reasons[0] == "rule `x` never matched"
    assert inconclusive.reasons[1].startswith("`no_lost_solutions` not exercised")
    failed = judge(Verdict([broken, idle]), ["step 1 never played"])
    assert failed.state == FAIL and failed.exit_code == 1  # FAIL wins over INCONCLUSIVE
    assert judge(None, [], error="boom").exit_code == 2
    stopped = judge(Verdict([held]), [], interrupted_by="SIGTERM")
    assert (stopped.state, stopped.exit_code, stopped.so_far, stopped.complete) == (INTERRUPTED, 143, PASS, False)
    assert judge(Verdict([held]), [], interrupted_by="SIGINT").exit_code == 130
    assert worst([PASS, INCONCLUSIVE, FAIL]) == FAIL and worst([PASS, INCONCLUSIVE]) == INCONCLUSIVE


def test_optional_rule_field_leaves_public_form_alone():
    assert "optional" not in Rule.model_validate(RULE).public()
    assert Rule.model_validate({**RULE, "optional": True}).public()["optional"] is True


def _summary(state, gaps=(), invariants=()):
    return {"scenario": "s", "run_id": "r", "seed": 1, "variant": "correct", "time_scale": 1.0, "duration_s": 1.0,
            "state": state, "ok": state == PASS, "gaps": list(gaps), "reasons": list(gaps),
            "invariants": list(invariants), "error": None}


def test_junit_and_pytest_text_say_inconclusive():
    idle = not_exercised("no_lost_solutions", "nothing").to_dict()
    s = _summary(INCONCLUSIVE, ["rule `x` never matched"], [idle])
    suite = ET.fromstring(junit_xml([s]))[0]
    types = sorted(f.get("type") for f in suite.iter("failure"))
    assert types == ["inconclusive", "inconclusive"] and suite.get("failures") == "2"
    text = failure_text(s, "/tmp/run")
    assert text.startswith("scenario s INCONCLUSIVE")
    assert "INCONCLUSIVE rule `x` never matched" in text and "INCONCLUSIVE no_lost_solutions" in text


SCENARIO = """\
name: never-fires
extends: {base}
seed: 3
max_duration: 4s
traffic:
  - name: login
    count: 3
    vars: {{t: {{captcha_ticket: {{}}}}}}
    request: {{method: POST, path: /login, json: {{ticket: "${{t.ticket}}", randstr: "${{t.randstr}}"}}}}
timeline:
  - at: 0s
    add_rules:
      - id: typo
        match: {{service: captcha, action: DescribeCaptchaMiniResult}}
        effect: {{error: InternalError}}
  - after: {{kind: request, service: captcha, action: DescribeCaptchaMiniResult}}
    note: never triggered
expect:
  - all_requests_succeeded: {{}}
"""


def test_run_that_tested_nothing_is_inconclusive(tmp_path):
    sc = tmp_path / "never.yaml"
    sc.write_text(SCENARIO.format(base=os.path.abspath("scenarios/_targets/captcha_backend.yaml")))
    reports = tmp_path / "r"
    out = subprocess.run([sys.executable, "-m", "harness", "run", str(sc), "--report-dir", str(reports)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 3, out.stdout + out.stderr
    assert out.stdout.startswith("INCONCLUSIVE")
    run_dir = os.path.realpath(reports / "latest")
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert summary["state"] == INCONCLUSIVE and summary["ok"] is False and summary["exit_code"] == 3
    assert summary["gaps"][0] == "rule `typo` never matched"
    assert summary["gaps"][1].startswith("timeline step 2 (note after a trigger) never played")
    assert "rule `typo` never matched" in out.stderr
    suite = ET.parse(os.path.join(run_dir, "junit.xml")).getroot()[0]
    assert [f.get("type") for f in suite.iter("failure")] == ["inconclusive"]
    page = open(os.path.join(run_dir, "report.html")).read()
    assert "INCONCLUSIVE" in page and "timeline step 2 (note after a trigger) never played" in page


SLOW_SOLVES = """\
name: slow-solves
extends: {base}
seed: 4
services:
  solver: {{solve_distribution: fixed, solve_min_s: 8, solve_max_s: 8}}
traffic:
  - name: solve
    count: 2
    request: {{method: POST, path: /solve, json: {{sitekey: "6Le-slow-${{n}}", pageurl: "https://shop.example/"}}}}
expect:
  - no_lost_solutions: {{deadline: 5s}}
"""


def test_settling_waits_for_tasks_still_being_solved(tmp_path):
    """Solving takes 8 s, the deadline (solution → use) is 5 s: the run waits for the solutions
    and then judges them; a correct client is not 'not exercised'."""
    sc = tmp_path / "slow.yaml"
    sc.write_text(SLOW_SOLVES.format(base=os.path.abspath("scenarios/_targets/solver_client.yaml")))
    reports = tmp_path / "r"
    out = subprocess.run([sys.executable, "-m", "harness", "run", str(sc), "--report-dir", str(reports)],
                         capture_output=True, text=True, timeout=120)
    summary = json.load(open(os.path.join(os.path.realpath(reports / "latest"), "summary.json")))
    (inv,) = summary["invariants"]
    assert inv["exercised"] is True and inv["ok"] is True, inv
    assert inv["counts"]["produced"] == 2
    assert out.returncode == 0 and summary["state"] == PASS, out.stdout + out.stderr


def test_matrix_line_counts_inconclusive_runs_against_correct():
    from harness.matrix import Cell, Variant, VariantOutcome
    o = VariantOutcome(Variant("captcha_backend", "correct"), [
        Cell("a", "correct", True, [], None, "/r/a", 1.0, PASS),
        Cell("b", "correct", False, [], None, "/r/b", 1.0, INCONCLUSIVE)])
    assert not o.as_expected
    assert o.pass_line() == "1/2 scenarios pass (1 INCONCLUSIVE)"
