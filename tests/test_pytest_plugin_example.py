"""The example user suite (examples/user_suite, shown in docs/pytest.md) passes against the correct
reference backend and its fault tests fail against a buggy variant."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml  # noqa: F401  loaded before pytester's in-process runs (see test_pytest_plugin_scenarios)

import harness.scenario.yamlpos  # noqa: F401

pytest_plugins = ("pytester",)

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "examples" / "user_suite"
FAULT_TESTS = {"test_captcha_outage_lets_users_in", "test_unreachable_captcha_api_lets_users_in",
               "test_slow_captcha_api_does_not_hold_users"}


def run_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, variant: str) -> pytest.RunResult:
    monkeypatch.setenv("VARIANT", variant)
    return pytester.runpytest(str(SUITE), "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO))


def failed_tests(result: pytest.RunResult) -> set[str]:
    return {line.split("::")[1].split(" ")[0] for line in result.outlines if line.startswith("FAILED ")}


def test_example_suite_passes_against_the_correct_backend(pytester, monkeypatch):
    result = run_suite(pytester, monkeypatch, "correct")
    result.assert_outcomes(passed=7)


def test_injected_faults_fail_the_fail_closed_backend(pytester, monkeypatch):
    result = run_suite(pytester, monkeypatch, "fail_closed")
    result.assert_outcomes(passed=4, failed=3)
    assert failed_tests(result) == FAULT_TESTS
    result.stdout.fnmatch_lines(["*assert 403 == 200*"])  # the user was locked out during the outage
