"""The 2captcha-python client (examples/twocaptcha_client, the official SDK unmodified, https only) runs
the generic solver catalogue through its profile: the profile's ``tls: [solver]`` serves the solver
mock over https in every scenario, the correct app passes, a planted bug is caught by its invariant."""

from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).parent.parent
PROFILE = str(ROOT / "examples" / "twocaptcha_client" / "profile.yaml")
SOLVER = ROOT / "scenarios" / "solver"


def results(outcome):
    return {r.name: r for r in outcome.verdict.results}


def test_the_profiles_tls_is_added_to_every_scenario_it_runs():
    plain = str(SOLVER / "submit-no-slot.yaml")                      # no tls of its own
    assert load_scenario(plain).tls == []
    assert load_scenario(plain, profile=PROFILE).tls == ["solver"]
    assert load_scenario(str(SOLVER / "2captcha-sdk-over-tls.yaml"), profile=PROFILE).tls == ["solver"]  # once
    assert load_scenario(plain, profile=str(ROOT / "examples" / "solver_client" / "profile.yaml")).tls == []


def test_a_profile_tls_for_a_service_it_does_not_use_is_one_line(tmp_path):
    text = Path(PROFILE).read_text().replace("tls: [solver]", "tls: [solver, captcha]")
    (tmp_path / "profile.yaml").write_text(text)
    line = text.splitlines().index(next(s for s in text.splitlines() if s.startswith("tls:"))) + 1
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(SOLVER / "submit-no-slot.yaml"), profile=str(tmp_path / "profile.yaml"))
    assert str(e.value).endswith(f"profile.yaml:{line}: tls[1]: 'captcha' is not a mock this profile uses "
                                 "(its services: solver)")


def test_the_matrix_runs_its_catalogue_over_https():
    from harness import matrix
    run = matrix.catalogue()["twocaptcha_client"]
    assert len(run) >= 6
    for sc in run:
        assert sc.tls == ["solver"] and sc.target.command == "python examples/twocaptcha_client/app.py", sc.name


def test_the_correct_client_rides_out_busy_answers(run_scenario):
    outcome = run_scenario(load_scenario(str(SOLVER / "submit-no-slot.yaml"), profile=PROFILE))
    assert outcome.ok, outcome.explain()
    events = outcome.events()
    assert next(e for e in events if e.get("step") == "host_started")["urls"]["solver"].startswith("https://")
    busy = [e for e in events if e.kind == "response" and e.get("action") == "in.php"
            and "ERROR_NO_SLOT_AVAILABLE" in str(e.get("body"))]
    assert len(busy) >= 4                                         # three injected, the rest the thread cap
    assert sorted(e.get("status") for e in events if e.kind == "driver") == [200] * 6


@pytest.mark.parametrize("variant", ["", "sdk_wait"])
def test_a_task_polled_during_an_outage_is_lost_only_by_the_sdks_own_wait(run_scenario, variant):
    """The SDK's recaptcha() ends its wait when a poll cannot reach the solver (its HTTP layer raises
    another NetworkException class than the one its poller catches); the correct app polls on."""
    scenario = load_scenario(str(SOLVER / "solver-down-restart.yaml"), profile=PROFILE)
    outcome = run_scenario(scenario, variant=variant)
    if not variant:
        assert outcome.ok, outcome.explain()
        return
    # the claim needs a task submitted before the outage (0.4 s into the run); on a loaded machine
    # the app's first submit can come later, and then no task is polled during the outage at all
    for _ in range(2):
        if _submitted_before_the_outage(outcome):
            break
        outcome = run_scenario(scenario, variant=variant)
    assert _submitted_before_the_outage(outcome), "no submit before the outage in 3 runs"
    lost = results(outcome)["no_lost_solutions"]
    assert not lost.ok and lost.counts["lost"] == 1, lost.summary
    assert results(outcome)["all_requests_succeeded"].ok   # the app submitted again: its caller saw nothing
    (task,) = lost.evidence
    solved_at = next(row["t"] for row in task["history"] if row["kind"] == "solution")
    assert [row for row in task["history"] if row["t"] > solved_at] == []  # given up: never polled again


def _submitted_before_the_outage(outcome):
    events = outcome.events()
    stopped = next(e.seq for e in events if e.kind == "step" and e.get("step") == "service_stopped")
    return any(e.kind == "request" and e.get("action") == "in.php" and e.seq < stopped for e in events)
