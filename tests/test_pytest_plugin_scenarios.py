"""Scenario files as pytest items (collection rules, markers, failure message, junit) and the
``run_scenario`` fixture. The scenarios target the solver mock itself, so no process starts."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest
import yaml

import harness.scenario.yamlpos  # noqa: F401  loaded before pytester's in-process runs (see below)
from mocks.solver.config import DEFAULT_KEY

# In-process pytester runs drop modules first imported during the run from sys.modules afterwards;
# PyYAML's C parser (an extension module, never unloaded) would then build events of the old classes.

pytest_plugins = ("pytester",)


def probe(name: str, *, faults: int = 2, want: int = 2, tags: str = "[probe, fail-open]", extra: str = "") -> str:
    """A scenario whose target is the solver mock: ``faults`` 503s, expecting exactly ``want``."""
    return f"""\
name: {name}
tags: {tags}
services: {{solver: {{}}}}
target:
  url: "${{solver.url}}"
  ready: {{path: "/res.php?key={DEFAULT_KEY}&action=getbalance"}}
traffic:
  - name: probe
    count: 4
    start: 0.2s
    request: {{path: /res.php, query: {{key: {DEFAULT_KEY}, action: getbalance}}}}
timeline:
  - at: 0s
    add_rules: [{{match: {{service: solver, action: res.php}}, effect: {{status: 503}}, schedule: {{times: {faults}}}}}]
expect:
  - journal_count: {{where: {{kind: response, service: solver, status: 503}}, min: {want}, max: {want}}}
{extra}"""


@pytest.fixture()
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with testpaths = tests and a scenario catalogue beside it."""
    pytester.makeini("[pytest]\ntestpaths = tests\naddopts = -p no:cacheprovider\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_unit.py").write_text("def test_unit():\n    pass\n")
    cat = pytester.mkdir("scen")
    (cat / "ok.yaml").write_text(probe("probe-ok"))
    (cat / "deep").mkdir()
    (cat / "deep" / "net.yaml").write_text(probe("probe-net", tags="[network]"))
    (cat / "_targets").mkdir()
    (cat / "_targets" / "t.yaml").write_text(probe("fragment-in-folder"))
    (cat / "_part.yaml").write_text(probe("fragment-file"))
    (cat / "settings.yaml").write_text("foo: 1\nname: not-a-scenario\n")
    return pytester


def collected(result: pytest.RunResult) -> list[str]:
    return sorted(line for line in result.outlines if "::" in line)


def test_scenarios_are_collected_only_where_pointed(project: pytest.Pytester):
    assert collected(project.runpytest("--co", "-q")) == ["tests/test_unit.py::test_unit"]
    assert collected(project.runpytest("--co", "-q", "scen")) == ["scen/deep/net.yaml::probe-net",
                                                                 "scen/ok.yaml::probe-ok"]
    assert collected(project.runpytest("--co", "-q", "scen/ok.yaml")) == ["scen/ok.yaml::probe-ok"]
    assert collected(project.runpytest("--co", "-q", "--scenarios", "scen")) == [
        "scen/deep/net.yaml::probe-net", "scen/ok.yaml::probe-ok"]
    assert collected(project.runpytest("--co", "-q", "tests", "--scenarios", "scen/deep")) == [
        "scen/deep/net.yaml::probe-net", "tests/test_unit.py::test_unit"]


def test_tags_are_registered_markers(project: pytest.Pytester):
    result = project.runpytest("--co", "-q", "--strict-markers", "-m", "fail-open or scenario and network", "scen")
    assert collected(result) == ["scen/deep/net.yaml::probe-net", "scen/ok.yaml::probe-ok"]
    result = project.runpytest("--co", "-q", "--strict-markers", "-m", "network", "scen")
    assert collected(result) == ["scen/deep/net.yaml::probe-net"]
    assert "PytestUnknownMarkWarning" not in result.stdout.str()


def test_variants_make_one_item_each_and_applies_to_skips(project: pytest.Pytester):
    (project.path / "scen" / "ok.yaml").write_text(probe("probe-ok", extra="applies_to: [correct]\n"))
    result = project.runpytest("-q", "-rs", "scen/ok.yaml", "--harness-variant", "correct,buggy")
    result.assert_outcomes(passed=1, skipped=1)
    assert "scen/ok.yaml: applies_to ['correct'], not buggy" in result.stdout.str()
    assert collected(project.runpytest("--co", "-q", "scen/ok.yaml", "--harness-variant", "correct,buggy")) == [
        "scen/ok.yaml::probe-ok[buggy]", "scen/ok.yaml::probe-ok[correct]"]


def test_an_empty_variant_is_a_variant(project: pytest.Pytester):
    """``--harness-variant ""`` runs against the empty variant (like ``harness run --variant ""``),
    which is not the default ``correct``; an ``applies_to`` without it skips."""
    def variant_run(*args: str) -> tuple[pytest.RunResult, dict[str, str]]:
        junit = project.path / "v.xml"
        result = project.runpytest("-q", "-rs", "scen/ok.yaml", f"--junitxml={junit}", *args)
        cases = list(ET.parse(junit).getroot().iter("testcase"))
        return result, {p.get("name"): p.get("value") for c in cases for p in c.iter("property")}
    result, props = variant_run("--harness-variant", "")
    result.assert_outcomes(passed=1)
    assert props["variant"] == ""
    assert variant_run()[1]["variant"] == "correct"
    assert collected(project.runpytest("--co", "-q", "scen/ok.yaml", "--harness-variant", "",
                                       "--harness-variant", "correct")) == [
        "scen/ok.yaml::probe-ok[]", "scen/ok.yaml::probe-ok[correct]"]
    (project.path / "scen" / "ok.yaml").write_text(probe("probe-ok", extra="applies_to: [correct]\n"))
    variant_run("--harness-variant", "")[0].assert_outcomes(skipped=1)


def test_failure_shows_invariant_evidence_and_junit_works(project: pytest.Pytester):
    (project.path / "scen" / "bad.yaml").write_text(probe("probe-bad", faults=3, want=1))
    junit = project.path / "out.xml"
    result = project.runpytest("-q", "scen/ok.yaml", "scen/bad.yaml", f"--junitxml={junit}",
                               "--harness-report-dir", str(project.path / "reports"))
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "scenario probe-bad FAILED (variant correct, seed 0" in out
    assert "FAIL journal_count: 3 events match" in out
    # the evidence, each 503, in the failure section (pytest repeats it in the short summary when
    # it runs under CI=1, which does not truncate summary lines)
    failures = out.split("short test summary info")[0]
    assert failures.count('"kind": "response", "service": "solver"') == 3
    assert "Traceback" not in out and "raise ScenarioFailed" not in out
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"probe-ok", "probe-bad"}
    assert cases["probe-ok"].find("failure") is None
    failure = cases["probe-bad"].find("failure")
    assert failure is not None and "journal_count" in failure.get("message")
    props = {p.get("name"): p.get("value") for p in cases["probe-bad"].iter("property")}
    assert props["report"].startswith(str(project.path / "reports")) and os.path.exists(props["report"])


def test_invalid_scenario_is_a_one_line_collection_error(project: pytest.Pytester):
    (project.path / "scen" / "broken.yaml").write_text(probe("probe-broken").replace("journal_count", "no_such"))
    result = project.runpytest("-q", "scen/broken.yaml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*scen/broken.yaml:16: expect[[]0[]].no_such: unknown invariant*"])
    assert "Traceback" not in result.stdout.str()


def test_run_scenario_fixture(run_scenario, harness_report_dir):
    data = yaml.safe_load(probe("inline-probe"))
    outcome = run_scenario(data)
    assert outcome.ok, outcome.explain()
    assert outcome.invariants == {"journal_count": True} and outcome.failed == []
    assert os.path.exists(outcome.report) and outcome.report.startswith(harness_report_dir)
    assert sum(e.kind == "driver" for e in outcome.events()) == 4

    data["expect"][0]["journal_count"]["min"] = 3
    failed = run_scenario(data, seed=5)
    assert not failed.ok and failed.failed == ["journal_count"] and failed.result.seed == 5
    assert failed.run_dir != outcome.run_dir
    with pytest.raises(AssertionError, match="FAIL journal_count: 2 events match"):
        failed.assert_ok()


def test_run_scenario_resolves_extends_against_the_test_file(run_scenario, tmp_path):
    target = os.path.relpath(os.path.join(os.path.dirname(__file__), "..", "scenarios", "_targets",
                                          "captcha_backend.yaml"), os.path.dirname(__file__))
    with pytest.raises(Exception, match="no such file"):
        run_scenario({"name": "x", "extends": "nowhere/_t.yaml", "expect": []})
    outcome = run_scenario({"name": "extends-check", "extends": target, "traffic": [], "expect": [],
                            "target": {"env": {"VERIFY_TIMEOUT": "2"}}})
    assert outcome.ok, outcome.explain()
    assert outcome.result.scenario.target.integration == "captcha_backend"
    assert outcome.result.scenario.target.env["VERIFY_TIMEOUT"] == "2"
    assert outcome.result.scenario.target.env["CAPTCHA_APP_ID"] == "190000001"  # merged, not replaced


def test_inconclusive_scenario_fails_with_its_reasons(project: pytest.Pytester):
    # a rule that passes the static checks but never matches (the probe only polls res.php)
    idle = probe("probe-idle").replace("add_rules: [", "add_rules: [{id: never, match: {service: solver, "
                                                      "action: in.php}, effect: {status: 500}}, ")
    (project.path / "scen" / "idle.yaml").write_text(idle)
    result = project.runpytest("-q", "scen/idle.yaml", "--harness-report-dir", str(project.path / "reports"))
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "scenario probe-idle INCONCLUSIVE (variant" in out
    assert "INCONCLUSIVE rule `never` never matched" in out
