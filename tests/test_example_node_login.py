"""The Node.js login backend (examples/node_login, on the official tencentcloud-sdk-nodejs) as a real
process against the captcha mock: verification_fail_open judges a login by the last answer the app
got, so a retry that met a definite "bad ticket" is no blocked user, and a refusal after a last
answer that was a fault is one. `make setup` installs the app's node_modules."""

from pathlib import Path

import pytest

from harness.scenario import load_scenario

ROOT = Path(__file__).parent.parent
APP = ROOT / "examples" / "node_login"
WRAPPERS = sorted((APP / "scenarios").glob("*.yaml"))
# each bug variant (server.js) and a wrapper whose catalogue invariant must catch it
BUGS = {"fail_closed_on_busy": ("code26-fails-open", "verification_fail_open"),
        "no_sdk_timeout": ("hang-fails-open", "verification_fail_open"),
        "dr_any_appid": ("dr-tickets", "forged_dr_ticket_refused"),
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
    return {"name": name, "extends": "../examples/node_login/target.yaml", "services": {"captcha": {}},
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


def test_every_captcha_catalogue_scenario_has_a_wrapper_on_the_apps_route():
    assert [w.name for w in WRAPPERS] == sorted(p.name for p in (ROOT / "scenarios" / "captcha").glob("*.yaml"))
    for wrapper in WRAPPERS:
        sc = load_scenario(str(wrapper))
        assert sc.target.integration == "node_login" and sc.target.command == "node examples/node_login/server.js"
        assert not [f.name for f in sc.traffic if f.request.path == "/login"], wrapper


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=[w.stem for w in WRAPPERS])
def test_the_correct_app_passes_the_catalogue(run_scenario, wrapper):
    outcome = run_scenario(str(wrapper))
    assert outcome.ok, outcome.explain()


@pytest.mark.parametrize("variant", sorted(BUGS))
def test_each_bug_variant_is_caught_by_its_invariant(run_scenario, variant):
    wrapper, invariant = BUGS[variant]
    outcome = run_scenario(str(APP / "scenarios" / f"{wrapper}.yaml"), variant=variant)
    assert results(outcome)[invariant].exercised and not results(outcome)[invariant].ok, outcome.explain()
