"""Solver time profiles: slow tasks answer CAPCHA_NOT_READY many times, a share ends unsolvable, a
stalled task is accepted and never finishes; every accepted task is journaled with its plan."""

import time

import pytest
import requests

from mocks.solver.config import SolverConfig
from tests.test_solver_api import events, new_task, put_config, res, solver, wait_solved  # noqa: F401


def test_slow_profile_answers_not_ready_until_its_solve_time(solver):
    put_config(solver, profiles=[{"tasks": [1], "solve_min_s": 0.6}])
    slow, fast = new_task(solver), new_task(solver)
    t0 = time.monotonic()
    not_ready = 0
    while res(solver, action="get", id=slow).get("request") == "CAPCHA_NOT_READY":
        not_ready += 1
        time.sleep(0.05)
    assert time.monotonic() - t0 >= 0.5 and not_ready >= 8
    assert wait_solved(solver, fast)["status"] == 1
    plans = {e["task"]: e for e in events(solver, "task_accepted")}
    assert plans[int(slow)]["planned"] == "solved" and plans[int(slow)]["solve_s"] == 0.6
    assert plans[int(slow)]["profile"] == 0 and plans[int(fast)]["profile"] is None


def test_stalled_task_never_finishes_and_is_journaled_as_planned(solver):
    put_config(solver, profiles=[{"tasks": [1], "outcome": "stalled"}, {"tasks": [2], "outcome": "unsolvable"}])
    stalled, dead, ok = new_task(solver), new_task(solver), new_task(solver)
    assert wait_solved(solver, dead)["request"] == "ERROR_CAPTCHA_UNSOLVABLE"
    assert wait_solved(solver, ok)["status"] == 1
    time.sleep(0.3)
    assert res(solver, action="get", id=stalled)["request"] == "CAPCHA_NOT_READY"
    planned = {e["task"]: e["planned"] for e in events(solver, "task_accepted")}
    assert planned == {int(stalled): "stalled", int(dead): "unsolvable", int(ok): "solved"}
    finished = {e["task"] for e in events(solver, "solution")}
    assert int(stalled) not in finished and {int(dead), int(ok)} <= finished


def test_share_is_seeded_and_roughly_that_share(solver):
    put_config(solver, profiles=[{"share": 0.5, "outcome": "unsolvable"}], keys={
        "c0ffee00c0ffee00c0ffee00c0ffee00": {"threads": 100}})
    for _ in range(40):
        new_task(solver)
    plans = [e["planned"] for e in events(solver, "task_accepted")]
    assert 10 <= plans.count("unsolvable") <= 30


@pytest.mark.parametrize("profile, message", [
    ({"solve_min_s": 2, "solve_max_s": 1}, "solve_max_s must be >= solve_min_s"),
    ({"solve_max_s": 1}, "solve_max_s needs solve_min_s"),
    ({"outcome": "lost"}, "outcome"),
    ({"share": 2}, "share"),
])
def test_bad_profiles_are_refused(solver, profile, message):
    r = requests.put(solver.host.urls["control"] + "/solver/config", json={"profiles": [profile]}, timeout=5)
    assert r.status_code == 400 and message in r.text
    with pytest.raises(ValueError):
        SolverConfig(profiles=[profile])
