"""The Node.js login backend (examples/node_login, on the official tencentcloud-sdk-nodejs) as a real
process against the captcha mock: verification_fail_open judges a login by the last answer the app
got, so a retry that met a definite "bad ticket" is no blocked user, and a refusal after a last
answer that was a fault is one. `make setup` installs the app's node_modules."""

from pathlib import Path

import pytest

from harness.scenario import load_scenario

ROOT = Path(__file__).parent.parent
APP = ROOT / "examples" / "node_login"
PROFILE = str(APP / "profile.yaml")
CATALOGUE = sorted((ROOT / "scenarios" / "captcha").glob("*.yaml"))
# each bug variant (server.js) and a catalogue scenario whose invariant must catch it (through the profile)
BUGS = {"fail_closed_on_busy": ("code26-fails-open", "verification_fail_open"),
        "no_sdk_timeout": ("hang-fails-open", "verification_fail_open"),
        "dr_any_appid": ("dr-outage-tickets", "forged_dr_ticket_refused"),
        "retry_no_backoff": ("verification-calls-bounded", "calls_per_action_bounded")}
LOGIN = {"method": "POST", "path": "/api/session",
         "json": {"user": "u${n}", "captcha": {"ticket": "${t.ticket}", "rand": "${t.randstr}"}}}
INTERNAL_ERROR = {"match": {"service": "captcha", "action": "DescribeCaptchaResult"},
                  "effect": {"error": "InternalError"}}


@pytest.fixture(autouse=True)
def installed():
    if not (APP / "node_modules" / ".installed").exists():
        pytest.fail(f"{APP / 'node_modules'} is missing: run `make example-apps` (part of `make setup`)")


def scenario(name, traffic, rules, **fail_open):
    return {"name": name, "profile": "../examples/node_login/profile.yaml", "services": {"captcha": {}},
            "traffic": traffic, "timeline": [{"at": "0s", "add_rules": rules}],
            "expect": [{"verification_fail_open": {"max_latency": "3s", "allowed_status": [201], **fail_open}},
                       {"verification_enforced": {"allowed_status": [201], "denied_status": [422]}}]}


def results(outcome):
    return {r.name: r for r in outcome.verdict.results}


def test_a_retry_that_gets_a_bad_ticket_answer_is_not_a_blocked_user(run_scenario):
    sc = scenario("node-login-retry-then-bad", [
        {"name": "bad-login", "count": 1, "vars": {"t": {"bad_ticket": {"kind": "unknown"}}}, "request": LOGIN},
        {"name": "login", "count": 2, "start": "1s", "vars": {"t": {"captcha_ticket": {}}}, "request": LOGIN},
    ], [{**INTERNAL_ERROR, "id": "first-call", "schedule": {"times": 1}},            # the bad login's first call
        {**INTERNAL_ERROR, "id": "outage", "schedule": {"window": {"start": "1s", "end": "5s"}}}])
    outcome = run_scenario(sc)
    fail_open, enforced = results(outcome)["verification_fail_open"], results(outcome)["verification_enforced"]
    assert outcome.ok, outcome.explain()
    assert fail_open.counts == {"degraded": 2, "blocked": 0}          # the two logins of the outage, let in
    assert "1 more got a definite answer on a later call" in fail_open.summary
    assert enforced.counts == {"checked": 1, "wrong": 0}             # the bad ticket, refused on the retry
    bad = [e for e in outcome.events() if e.kind == "driver" and e.get("flow") == "bad-login"]
    assert [e.get("status") for e in bad] == [422]


def test_a_refusal_after_a_last_answer_that_was_a_fault_is_a_blocked_user(run_scenario):
    sc = scenario("node-login-fault-then-busy", [
        {"name": "login", "count": 2, "vars": {"t": {"captcha_ticket": {}}}, "request": LOGIN},
    ], [{**INTERNAL_ERROR, "id": "first-call", "schedule": {"times": 1}},
        {"match": {"service": "captcha", "action": "DescribeCaptchaResult"}, "effect": {"captcha_code": 26}}])
    outcome = run_scenario(sc, variant="fail_closed_on_busy")
    fail_open = results(outcome)["verification_fail_open"]
    assert not fail_open.ok
    assert fail_open.counts == {"degraded": 2, "blocked": 2}
    assert sorted(e["verification"] for e in fail_open.evidence) == [["busy"], ["internal_error", "busy"]]
    assert {e["status"] for e in fail_open.evidence} == {422}


def test_the_matrix_runs_every_captcha_catalogue_scenario_on_the_apps_route():
    from harness import matrix
    run = matrix.catalogue()["node_login"]
    assert sorted(sc.name for sc in run) == sorted(load_scenario(str(p)).name for p in CATALOGUE)
    for sc in run:
        assert sc.target.integration == "node_login" and sc.target.command == "node server.js"
        assert not [f.name for f in sc.traffic if f.request.path == "/login"], sc.name


@pytest.mark.parametrize("scenario", CATALOGUE, ids=[p.stem for p in CATALOGUE])
def test_the_correct_app_passes_the_catalogue(run_scenario, scenario):
    outcome = run_scenario(load_scenario(str(scenario), profile=PROFILE))
    assert outcome.ok, outcome.explain()


@pytest.mark.parametrize("variant", sorted(BUGS))
def test_each_bug_variant_is_caught_by_its_invariant(run_scenario, variant):
    name, invariant = BUGS[variant]
    outcome = run_scenario(load_scenario(str(ROOT / "scenarios" / "captcha" / f"{name}.yaml"), profile=PROFILE),
                           variant=variant)
    assert results(outcome)[invariant].exercised and not results(outcome)[invariant].ok, outcome.explain()
