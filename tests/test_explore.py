"""``harness explore``: the generator (seeded, only valid rules, every kind of fault that applies),
the shrinker (on synthetic predicates), the timeline merge, and one real find-and-shrink against a
bug variant the base scenario alone does not catch — and nothing against the correct variant."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys

import pytest
import yaml

from harness.explore.candidate import Base
from harness.explore.faults import Fault, simpler, timeline
from harness.explore.generate import candidate, run_seed
from harness.explore.shrink import Stop, shrink
from harness.journal import Event, kinds, read_events
from harness.verdict import evaluate
from mocks.registry import SERVICES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPTCHA_BASE = os.path.join("examples", "explore", "captcha_backend.yaml")


@pytest.fixture()
def everything(tmp_path):
    """A base with every built-in service, a proxied link, a callback link and a target command:
    every family of fault applies."""
    first, *_ = SERVICES
    callers = [name for name, spec in SERVICES.items() if spec.calls_back]
    doc = {"name": "every-fault", "services": {name: {} for name in SERVICES},
           "links": [{"name": f"integration->{first}", "mitm": True}, f"{callers[0]}->integration"],
           "target": {"command": "python -c pass"},
           "traffic": [{"name": "a", "count": 20, "rate": 10, "request": {"path": "/"}}],
           "timeline": [{"at": "0.5s", "stop_service": first}, {"at": "0.7s", "note": "kept"}], "expect": []}
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(doc))
    return Base.load(str(path))


def test_same_seed_same_candidates_and_seeds_differ(everything):
    menu = everything.menu
    one = [candidate(menu, 11, i) for i in range(1, 60)]
    assert one == [candidate(menu, 11, i) for i in range(1, 60)]
    assert one != [candidate(menu, 12, i) for i in range(1, 60)]
    assert run_seed(11, 3) == run_seed(11, 3) != run_seed(12, 3)
    # a candidate depends only on (seed, index): drawing others before it changes nothing
    assert candidate(menu, 11, 40) == one[39]


def test_generator_makes_only_valid_rules_of_every_kind(everything):
    menu = everything.menu
    assert menu.horizon == 2.0 and menu.restartable_target and len(menu.links) == 2
    seen = collections.Counter()
    for seed in range(25):
        for i in range(1, 21):
            faults = candidate(menu, seed, i)
            assert 1 <= len(faults) <= 4
            outages = [(f.outage, f.what) for f in faults if f.outage]
            assert len(outages) == len(set(outages))
            scenario = everything.scenario_of(faults, run_seed(seed, i))  # the loader `harness run` uses
            added = [r for s in scenario.timeline if s.add_rules for r in s.add_rules]
            assert len(added) == sum(f.rule is not None for f in faults)
            patched = [s.set_config for s in scenario.timeline if s.set_config]   # checked against the mock's config
            assert patched == [{f.what: f.config} for f in faults if f.config is not None]
            for f in faults:
                seen[_family(f)] += 1
                for smaller in simpler(f):  # the shrinker's versions are valid too
                    everything.scenario_of([smaller], 1)
            for rule in added:
                seen[rule.applier.value] += 1
    for family in ("callback", "toxic", "mitm", "mock", "link down", "service down", "target down",
                   "error", "captcha_code", "forgery", "condition"):
        assert seen[family] > 0, (family, seen)


def test_a_target_whose_work_does_not_survive_a_restart_is_never_restarted():
    profile = Base.from_profile(os.path.join(ROOT, "examples", "twocaptcha_client", "profile.yaml"))
    assert profile.scenario.target.survives_restart is False and not profile.menu.restartable_target
    drawn = collections.Counter(f.outage for i in range(1, 300) for f in candidate(profile.menu, 2, i))
    assert drawn["service"] > 5 and drawn["target"] == 0
    # the same target, restartable: target outages are drawn
    solver = Base.load(os.path.join(ROOT, "examples", "explore", "solver_client.yaml"))
    assert solver.menu.restartable_target
    crashes = [f for i in range(1, 300) for f in candidate(solver.menu, 2, i) if f.outage == "target"]
    assert len(crashes) > 20
    # while the traffic is in flight: never at 0 (nothing to lose yet), never after the horizon
    assert all(0 < f.at <= solver.menu.horizon and f.until > f.at for f in crashes)


def test_callback_faults_may_aim_at_an_event_the_base_emits():
    base = Base.load(os.path.join(ROOT, "examples", "explore", "chat_backend.yaml"))
    assert base.menu.emitted == {"chat": ["State.StateChange"]}
    aimed = [f for i in range(1, 200) for f in candidate(base.menu, 3, i)
             if f.rule is not None and "callback" in f.rule["effect"]]
    actions = collections.Counter(f.rule["match"].get("action") for f in aimed)
    # both: whichever callbacks come first, and the emitted login webhooks
    assert actions[None] > 5 and actions["State.StateChange"] > 5 and set(actions) == {None, "State.StateChange"}
    base.scenario_of([f for f in aimed if f.rule["match"].get("action")][:1], 1)   # a valid rule


def test_an_error_only_one_action_answers_is_drawn_for_that_action_only():
    base = Base.load(os.path.join(ROOT, "examples", "explore", "solver_client.yaml"))
    errors = collections.Counter(f.rule["match"].get("action") for i in range(1, 300)
                                 for f in candidate(base.menu, 5, i)
                                 if f.rule is not None and "error" in f.rule["effect"])
    assert errors["in.php"] > 5 and set(errors) == {"in.php"}   # "no slot" answers a submit, never a poll


def _family(fault: Fault) -> str:
    if fault.config is not None:
        return "condition"
    if fault.rule is None:
        return f"{fault.outage} down"
    effect = fault.rule["effect"]
    if effect.get("callback") in ("wrong_id", "wrong_sdkappid", "bad_sign", "missing_sign", "stale_time"):
        return "forgery"
    return next((k for k in ("error", "captcha_code") if k in effect), "other")


def test_sweep_grid_is_every_single_fault_at_every_start_time_and_length(everything):
    from harness.explore.sweep import SHORT_S, grid, kinds
    menu = everything.menu
    cells = grid(menu, 4)
    assert cells == grid(menu, 4) and all(len(c) == 1 for c in cells)
    faults = [c[0] for c in cells]
    assert sorted({f.at for f in faults}) == [0.0, 0.5, 1.0, 1.5]          # k · horizon / 4
    keys = [json.dumps([f.at, f.rule, f.outage, f.what, f.until, f.condition], sort_keys=True) for f in faults]
    assert len(keys) == len(set(keys))                                     # no cell twice
    crashes = [f for f in faults if f.outage == "target"]
    assert crashes and all(f.at > 0 for f in crashes)                      # a crash at 0 tests nothing
    for f in faults:                                                       # a blip, or half the traffic (≥ 1 s)
        end = f.until if f.rule is None else float(f.rule["schedule"]["window"]["end"].rstrip("s"))
        assert f.config is not None or round(end - f.at, 3) in (SHORT_S, 1.0)
    # each kind once per (start, length); a condition (the rest of the run) once per start
    n_kinds, n_conditions = len(kinds(menu)), sum(1 for what, _ in kinds(menu) if what == "condition")
    assert len(cells) == 4 * 2 * n_kinds - 4 * n_conditions - 2            # minus the two crashes at 0
    families = collections.Counter(_family(f) for f in faults)
    effects = collections.Counter(next(iter(f.rule["effect"])) for f in faults if f.rule is not None)
    streams = {f.rule["effect"]["stream"] for f in faults if f.rule is not None and "toxic" in f.rule["effect"]}
    assert all(families[k] for k in ("condition", "forgery", "error", "captcha_code", "link down",
                                     "service down", "target down")), families
    assert all(effects[k] for k in ("callback", "toxic", "drop_response", "hang", "reset", "status",
                                    "partial_body", "delay_ms")), effects
    assert streams == {"upstream", "downstream"}
    first = [c for c in cells if c[0].at == 0.0][: n_kinds]                # each kind is a valid scenario
    for cell in first:
        everything.scenario_of(cell, 1)


def test_sweep_finds_the_fail_closed_backend_and_nothing_on_the_correct_one(tmp_path):
    def sweep(variant: str, *more: str) -> tuple[subprocess.CompletedProcess, dict]:
        out = tmp_path / variant
        r = harness("explore", CAPTCHA_BASE, "--sweep", "1", "--variant", variant, "--repeats", "2",
                    "--confirm", "2", "-j", "2", "--report-dir", str(out), "-q", *more)
        folder, = [p for p in out.iterdir() if p.name.startswith("explore-")]
        return r, json.loads((folder / "explore.json").read_text())

    r, found = sweep("fail_closed", "--until", "verification_fail_open")
    assert r.returncode == 1, r.stdout + r.stderr
    assert found["sweep"]["times"] == 1 and found["sweep"]["cells"] > 4 and found["budget_s"] is None
    failure = found["failures"][0]
    assert failure["invariant"] == "verification_fail_open" and len(failure["faults"]) == 1
    assert f"of {found['sweep']['cells']} sweep cells" in r.stdout
    r, nothing = sweep("correct", "--runs", "4")
    assert r.returncode == 0 and nothing["state"] == "NOTHING FOUND" and nothing["candidates"] == 4, r.stdout
    # what each cell proved: NOTHING FOUND is not four PASSes unless the faults fired and were judged
    states = nothing["candidate_states"]
    assert sum(states.values()) == 4 and set(states) <= {"PASS", "INCONCLUSIVE"} and states.get("PASS"), states
    assert "candidates: " in r.stdout and f"{states['PASS']} PASS" in r.stdout


def test_what_a_candidate_proved():
    from types import SimpleNamespace as NS
    from harness.explore.search import Explorer, Judged, Options
    explorer = Explorer(Base.load(os.path.join(ROOT, CAPTCHA_BASE)), Options(runs=1))
    explorer.base.skip.add("flaky_one")

    def run(gaps=(), unexercised=(), error=None):
        results = [NS(name=n, ok=False, exercised=False, summary="not exercised: why") for n in unexercised]
        return NS(gaps=list(gaps), verdict=NS(results=results), error=error)

    assert explorer.proved(Judged({"inv": "x"}, None, run())) == ("FAIL", [])
    assert explorer.proved(Judged({}, "boom", run(error="boom"))) == ("ERROR", [])
    assert explorer.proved(Judged({}, None, run())) == ("PASS", [])
    assert explorer.proved(Judged({}, None, run(unexercised=["flaky_one"]))) == ("PASS", [])   # not judged
    assert explorer.proved(Judged({}, None, run(gaps=["rule `x1` never matched"], unexercised=["inv"]))) == \
        ("INCONCLUSIVE", ["rule `x1` never matched", "`inv` not exercised: why"])


def test_timeline_keeps_traffic_steps_and_merges_faults_by_time(everything):
    faults = [Fault(0.6, rule={"id": "x1", "match": {"service": "s"}, "effect": {"reset": True}}),
              Fault(0.2, outage="target", until=1.0)]
    steps = timeline([{"at": "0.5s", "stop_service": "s"}, {"at": "0.3s", "note": "a"}, {"note": "b"},
                      {"at": "0.7s", "note": "c"}], faults)
    assert [next(k for k in s if k != "at") for s in steps] == [
        "stop_target", "note", "note", "add_rules", "note", "start_target"]


def rule_fault(at, effect, schedule=None, rid="x1"):
    return Fault(at, rule={"id": rid, "match": {"service": "s", "action": "A"}, "effect": effect,
                           **({"schedule": schedule} if schedule else {})})


def test_shrinker_reaches_the_minimal_candidate():
    faults = [rule_fault(0.4, {"delay_ms": 8000}, {"probability": 0.8}, "x1"),
              rule_fault(0.3, {"error": "InternalError", "delay_ms": 3000}, {"after": 2, "times": 5}, "x2"),
              Fault(0.2, outage="link", what="integration->s", until=1.5),
              rule_fault(0.0, {"callback": "storm", "count": 12, "within_ms": 100}, {"every": 3}, "x3")]

    async def still_fails(trial):   # fails while some rule answers InternalError
        return any(f.rule and f.rule["effect"].get("error") == "InternalError" for f in trial)

    out = asyncio.run(shrink(faults, still_fails))
    assert out.complete
    assert out.faults == [rule_fault(0.0, {"error": "InternalError"}, {"times": 1}, "x2")]
    assert out.steps >= 3 and out.checks > out.steps


def test_shrinker_keeps_what_the_failure_needs():
    faults = [rule_fault(0.0, {"callback": "storm", "count": 12, "within_ms": 100}, None, "x1"),
              Fault(0.5, outage="service", what="s", until=2.0)]

    async def still_fails(trial):   # needs concurrent copies (≥ 2) and the outage
        cb = [f for f in trial if f.rule and f.rule["effect"].get("concurrent")
              or f.rule and f.rule["effect"].get("callback") == "storm"]
        return bool(cb) and cb[0].rule["effect"].get("count", 1) >= 2 and any(f.outage for f in trial)

    out = asyncio.run(shrink(faults, still_fails))
    effects = [f.rule["effect"] for f in out.faults if f.rule]
    assert effects == [{"callback": "duplicate", "count": 3, "concurrent": True}]
    outage, = [f for f in out.faults if f.outage]
    assert outage.at == 0.0 and outage.until < 0.2


def test_shrinker_stopped_keeps_the_smallest_failing_so_far():
    faults = [rule_fault(0.0, {"reset": True}, None, f"x{i}") for i in range(1, 4)]
    calls = []

    async def still_fails(trial):
        calls.append(trial)
        if len(calls) > 1:
            raise Stop
        return True

    out = asyncio.run(shrink(faults, still_fails))
    assert not out.complete and out.faults == faults[1:]


# --- the captcha invariants under outages explore makes ------------------------------------------
def journal(*events):
    out = []
    for i, (kind, t, data) in enumerate(events, 1):
        out.append(Event.from_dict(kinds.get(kind).partial(seq=i, t=t, **data)))
    return out


def driver(t, status, ticket="tk", latency_ms=200):
    return ("driver", t, {"flow": "login", "n": 1, "status": status, "latency_ms": latency_ms,
                          "vars": {"t": {"ticket": ticket}}, "var_kinds": {"t": "captcha_ticket"}})


def test_a_stopped_captcha_service_counts_as_degraded():
    svc = next(n for n in SERVICES if n in ("captcha",))
    stop, start = ({"step": "service_stopped", "service": svc}, {"step": "service_started", "service": svc})
    let_in = journal(("step", 0.1, stop), driver(0.4, 200), ("step", 0.9, start))
    r = {x.name: x for x in evaluate([{"verification_enforced": {}}, {"verification_fail_open": {}}], let_in).results}
    assert r["verification_fail_open"].ok and r["verification_fail_open"].exercised
    assert not r["verification_enforced"].exercised   # not judged as "let through without verification"
    blocked = journal(("step", 0.1, stop), driver(0.4, 403), ("step", 0.9, start))
    assert not evaluate([{"verification_fail_open": {}}], blocked).results[0].ok


def test_a_refused_call_after_an_outage_is_the_backends_policy_not_a_blocked_user():
    # the Node app's first call met the stopped service, its retry got RequestLimitExceeded and it
    # refused the login (explore's false alarm on the correct node_login): its policy, not judged
    stop, start = ({"step": "service_stopped", "service": "captcha"}, {"step": "service_started", "service": "captcha"})

    def run(error, status):
        call = [("request", 0.35, {"service": "captcha", "action": "DescribeCaptchaResult", "rid": "r1",
                                   "params": {"Ticket": "tk"}}),
                ("response", 0.36, {"service": "captcha", "action": "DescribeCaptchaResult", "rid": "r1", "status": 200,
                                    "rule": "x2", "body": {"Response": {"Error": {"Code": error}}}})]
        return evaluate([{"verification_fail_open": {}}],
                        journal(("step", 0.1, stop), ("step", 0.2, start), *call, driver(0.4, status))).results[0]

    assert not run("RequestLimitExceeded", 403).exercised
    assert not run("ResourceUnavailable", 403).exercised
    blocked = run("InternalError", 403)           # a degraded service: fail open
    assert blocked.exercised and not blocked.ok


def test_a_refusing_answer_sent_while_the_link_carried_a_fault_is_not_a_blocked_user():
    # explore's false alarm on the correct reference backend: a bad ticket's CaptchaCode 15 went out
    # 30 ms before a bandwidth toxic was added (within the edge a cut is journaled late by); the
    # backend refused, as it must if the answer arrived. A good ticket refused there still fails, and
    # a degraded answer (InternalError) refused still fails.
    toxic = [("toxic", 0.43, {"op": "added", "link": "integration->captcha", "rule": "r9", "toxic": "bandwidth"}),
             ("toxic", 0.53, {"op": "removed", "link": "integration->captcha", "rule": "r9"})]

    def run(code, status, error=None):
        body = {"Response": {"Error": {"Code": error}}} if error else {"Response": {"CaptchaCode": code}}
        call = [("request", 0.39, {"service": "captcha", "action": "DescribeCaptchaResult", "rid": "r1",
                                   "params": {"Ticket": "tk"}}),
                ("response", 0.395, {"service": "captcha", "action": "DescribeCaptchaResult", "rid": "r1",
                                     "status": 200, "rule": None, "outcome": "delivered", "body": body})]
        return evaluate([{"verification_fail_open": {}}], journal(*call, driver(0.4, status, latency_ms=7), *toxic)
                        ).results[0]

    bad_refused = run(15, 403)
    assert not bad_refused.exercised and "1 refused on a refusing answer sent while the link" in bad_refused.summary
    assert run(15, 200).ok and run(15, 200).exercised        # let in: failing open is right too
    good_refused = run(1, 403)
    assert good_refused.exercised and not good_refused.ok    # neither the answer nor failing open refuses it
    assert not run(None, 403, error="InternalError").ok


def test_a_request_that_never_reached_the_target_is_not_judged():
    # the target starting again (not listening yet) while the captcha service is down: the driver
    # could not connect, so the integration decided nothing (explore found this as a false alarm)
    stop, start = ({"step": "service_stopped", "service": "captcha"}, {"step": "service_started", "service": "captcha"})
    refused_connection = ("driver", 0.4, {**driver(0.4, None)[2], "latency_ms": 1,
                                          "error": "ClientConnectorError: Cannot connect", "unreached": True})
    r = evaluate([{"verification_fail_open": {}}], journal(("step", 0.1, stop), refused_connection,
                                                            ("step", 0.9, start))).results[0]
    assert not r.exercised
    timed_out = ("driver", 0.4, {**driver(0.4, None)[2], "error": "timeout"})   # it connected: a blocked user
    r = evaluate([{"verification_fail_open": {}}], journal(("step", 0.1, stop), timed_out, ("step", 0.9, start))).results[0]
    assert r.exercised and not r.ok


def test_a_request_the_killed_target_never_answered_is_not_judged():
    svc = "captcha"
    verified = [("request", 0.25, {"service": svc, "action": "DescribeCaptchaResult", "rid": "r1",
                                   "params": {"Ticket": "tk"}}),
                ("response", 0.26, {"service": svc, "action": "DescribeCaptchaResult", "rid": "r1", "status": 200,
                                    "body": {"Response": {"CaptchaCode": 1}}})]
    killed = journal(*verified, ("step", 0.3, {"step": "target_killed"}), driver(0.4, None))
    assert not evaluate([{"verification_enforced": {}}], killed).results[0].exercised
    refused = journal(*verified, driver(0.4, 403))
    assert not evaluate([{"verification_enforced": {}}], refused).results[0].ok


# --- a real exploration ----------------------------------------------------------------------------
def harness(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def explore(tmp_path, variant: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / variant
    r = harness("explore", CAPTCHA_BASE, "--runs", "4", "--seed", "0", "--variant", variant,
                "--repeats", "2", "--confirm", "2", "--until", "verification_fail_open", "--report-dir", str(out), "-q")
    folder, = [p for p in out.iterdir() if p.name.startswith("explore-")]
    return r, json.loads((folder / "explore.json").read_text())


def test_explore_finds_shrinks_and_writes_a_failing_scenario_and_nothing_on_the_correct_variant(tmp_path):
    # the base alone does not catch the fail_closed backend
    alone = harness("run", CAPTCHA_BASE, "--variant", "fail_closed", "--report-dir", str(tmp_path / "alone"), "-q")
    assert alone.returncode == 3 and "INCONCLUSIVE" in alone.stdout, alone.stdout + alone.stderr  # no FAIL

    r, found = explore(tmp_path, "fail_closed")
    assert r.returncode == 1, r.stdout + r.stderr
    # --until: the search stops once that invariant failed (here: at the first pair of candidates)
    assert found["state"] == "FOUND" and found["stopped_by"] == "verification_fail_open" and found["candidates"] < 4
    assert "stopped: verification_fail_open failed (--until)" in r.stdout
    failure = found["failures"][0]
    assert failure["invariant"] == "verification_fail_open"
    assert 1 <= len(failure["faults"]) <= failure["original_faults"] and failure["failed"] >= 1
    assert "verification_fail_open" in r.stdout and failure["file"] in r.stdout
    text = open(failure["file"]).read()
    assert text.startswith("# Found by `harness explore`") and "FAILS: verification_fail_open" in text
    assert os.path.exists(failure["report"])
    page = (tmp_path / "fail_closed").glob("explore-*/index.html")
    assert "verification_fail_open" in next(page).read_text()

    again = harness("run", failure["file"], "--report-dir", str(tmp_path / "again"))
    assert again.returncode == 1, again.stdout + again.stderr
    summary = tmp_path / "again" / "latest" / "summary.json"
    failed = [i["name"] for i in json.loads(summary.read_text())["invariants"] if not i["ok"] and i["exercised"]]
    assert "verification_fail_open" in failed

    r, nothing = explore(tmp_path, "correct")
    assert r.returncode == 0, r.stdout + r.stderr
    assert nothing["state"] == "NOTHING FOUND" and nothing["failures"] == [] and nothing["candidates"] == 4
    assert nothing["stopped_by"] is None
    assert nothing["run_errors"] == 0


def test_bad_input_is_one_line(tmp_path):
    r = harness("explore", CAPTCHA_BASE, "--profile", "p")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--profile: no such profile file p" in r.stderr
    r = harness("explore", "examples/node_login/profile.yaml", "--profile", "examples/node_login/profile.yaml")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "is a target profile already" in r.stderr
    (tmp_path / "p.yaml").write_text("target: {url: 'http://127.0.0.1:9'}\nservices: {redis: {}}\n")
    r = harness("explore", str(tmp_path / "p.yaml"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no service of this profile has an explore base" in r.stderr
    r = harness("explore", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    r = harness("explore", CAPTCHA_BASE, "--until", "no_such_invariant")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--until no_such_invariant: unknown invariant" in r.stderr
    r = harness("explore", CAPTCHA_BASE, "--budget", "soon")
    assert r.returncode == 2 and "--budget" in r.stderr and "Traceback" not in r.stderr


def test_a_profile_is_a_base_driven_through_its_roles_and_judged_by_its_defaults():
    base = Base.from_profile(os.path.join(ROOT, "examples/node_login/profile.yaml"), "correct")
    flows = {f.name: f for f in base.scenario.traffic}
    assert {"login", "bad-login", "dr-wrong-app", "dr-stale"} <= set(flows)
    assert flows["login"].request.path == "/api/session"          # the profile's login route
    expect = {next(iter(e)): next(iter(e.values())) for e in base.expect()}
    # the service's invariants take the profile's idea of let in / refused (201 / 422)
    assert expect["verification_fail_open"]["allowed_status"] == [201]
    assert expect["forged_dr_ticket_refused"]["denied_status"] == [422]
    doc = base.document([], seed=5)
    assert "profile" not in doc and doc["target"]["command"] == "node server.js"


def test_a_base_scenario_runs_against_another_profile():
    base = Base.load(os.path.join(ROOT, "examples/explore/solver_client.yaml"), None,
                     os.path.join(ROOT, "examples/twocaptcha_client/profile.yaml"))
    assert "twocaptcha_client" in base.doc["target"]["command"]


def test_progress_line_in_a_log(tmp_path):
    import io
    from harness.explore.progress import Progress
    from harness.explore.search import Explorer, Options
    from harness.explore.shrink import Shrunk
    stream = io.StringIO()
    progress = Progress(stream=stream)
    explorer = Explorer(Base.load(os.path.join(ROOT, CAPTCHA_BASE)), Options(budget_s=90), progress)
    explorer.runs, explorer.candidates = 7, 5
    progress.update(explorer, phase="searching")
    progress.update(explorer)                      # same phase, within 10 s: no new line in a log
    explorer.shrinking = "verification_fail_open"
    progress.update(explorer, phase="shrinking verification_fail_open", shrink=Shrunk([], steps=2, checks=4))
    progress.say("run 5: FAIL")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and lines[2] == "run 5: FAIL"
    assert lines[0].startswith("explore: runs 7 · candidates 5 · failures 0 · searching · 1m")
    assert "shrinking verification_fail_open step 2 (tried 4, 0 faults)" in lines[1] and "s left" in lines[1]


def test_a_request_made_while_the_target_was_down_is_not_judged():
    down = journal(("step", 0.1, {"step": "service_stopped", "service": "captcha"}),
                   ("step", 0.1, {"step": "target_killed"}), driver(0.4, None, latency_ms=5),
                   ("step", 0.6, {"step": "target_started"}), ("step", 0.6, {"step": "service_started",
                                                                           "service": "captcha"}))
    assert not evaluate([{"verification_fail_open": {}}], down).results[0].exercised
    up = journal(("step", 0.1, {"step": "service_stopped", "service": "captcha"}), driver(0.4, None, latency_ms=5),
                 ("step", 0.6, {"step": "service_started", "service": "captcha"}))
    assert not evaluate([{"verification_fail_open": {}}], up).results[0].ok   # the target blocked the user


def test_an_unverified_ticket_while_other_calls_hang_is_no_skipped_verification():
    hung = [("request", 0.2, {"service": "captcha", "action": "DescribeCaptchaResult", "rid": "r1",
                              "params": {"Ticket": "other"}}),
            ("response", 1.2, {"service": "captcha", "action": "DescribeCaptchaResult", "rid": "r1", "status": None,
                               "outcome": "hang", "rule": "x1"})]
    during = journal(*hung, driver(0.6, 200, ticket="tk2", latency_ms=300))
    assert not evaluate([{"verification_enforced": {}}], during).results[0].exercised
    later = journal(*hung, driver(2.0, 200, ticket="tk2", latency_ms=300))
    result = evaluate([{"verification_enforced": {}}], later).results[0]
    assert not result.ok and result.evidence[0]["why"] == "let through without verification"


def test_a_cut_journaled_just_after_the_answer_still_counts():
    cut = ("link", 0.41, {"op": "down", "link": "integration->captcha", "rule": "cut"})
    let_in = journal(driver(0.4, 200, latency_ms=50), cut)
    assert not evaluate([{"verification_enforced": {}}], let_in).results[0].exercised
    long_after = journal(driver(0.4, 200, latency_ms=50), ("link", 0.6, cut[2]))
    assert not evaluate([{"verification_enforced": {}}], long_after).results[0].ok


def test_ctrl_c_keeps_what_was_found(tmp_path):
    import signal
    proc = subprocess.Popen([sys.executable, "-m", "harness", "explore", CAPTCHA_BASE, "--variant", "fail_closed",
                             "--budget", "2m", "--report-dir", str(tmp_path)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in proc.stderr:
            if line.startswith("run ") and "FAIL" in line:   # found; now shrinking
                proc.send_signal(signal.SIGINT)
                break
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    data = json.loads(next(tmp_path.glob("explore-*/explore.json")).read_text())
    assert data["state"] == "INTERRUPTED" and len(data["failures"]) == 1
    failure = data["failures"][0]
    assert os.path.exists(failure["file"]) and failure["tries"] == 0   # written, not confirmed
    assert "INTERRUPTED" in out and failure["file"] in out


def test_a_definite_answer_before_the_service_stopped_is_no_degraded_service():
    call = [("request", 0.2, {"service": "captcha", "action": "DescribeCaptchaResult", "rid": "r1",
                              "params": {"Ticket": "tk"}}),
            ("response", 0.3, {"service": "captcha", "action": "DescribeCaptchaResult", "rid": "r1", "status": 200,
                               "body": {"Response": {"CaptchaCode": 15}}})]
    stopped = ("step", 0.35, {"step": "service_stopped", "service": "captcha"})
    refused = journal(*call, stopped, driver(0.4, 403, latency_ms=250))
    assert not evaluate([{"verification_fail_open": {}}], refused).results[0].exercised


def test_until_stops_only_at_a_failure_that_reproduces_nine_times_in_ten():
    from types import SimpleNamespace

    from harness.explore.search import Explorer, Failure
    fault = [Fault(0.0, outage="target", until=1.0)]

    def failure(fails, tries):
        return Failure("verification_fail_open", "x", 1, 1.0, 1, fault, fault, fails=fails, tries=tries)
    search = SimpleNamespace(failures=[failure(4, 10)], base=SimpleNamespace(skip=set()),
                             opts=SimpleNamespace(until=("verification_fail_open",)))
    assert Explorer.reached(search) is None                    # 4/10: kept, the search goes on
    search.failures.append(failure(9, 10))
    assert Explorer.reached(search) == "verification_fail_open"
    search.failures = [failure(0, 0)]                          # not confirmed (--confirm 0): as found
    assert Explorer.reached(search) == "verification_fail_open"
    search.failures, search.base.skip = [], {"verification_fail_open"}   # fails without faults
    assert Explorer.reached(search) == "verification_fail_open"


def test_a_slow_solver_is_a_condition_the_correct_client_rides_out_and_a_quitter_does_not(tmp_path):
    """The solver's ``slow solving`` condition, as explore injects it, with every pingback lost:
    fallback polls meet CAPCHA_NOT_READY. The correct client polls on; the one that gives a task up on
    "not ready" loses solutions (explore found it so, in two steps)."""
    from harness.explore.space import space_of
    slow = space_of("solver").conditions["slow solving"]
    faults = [Fault(0.0, what="solver", condition="slow solving", config=slow),
              Fault(0.0, rule={"id": "x1", "match": {"service": "solver", "action": "pingback"},
                               "effect": {"callback": "drop"}})]
    assert faults[0].steps() == [{"at": "0s", "set_config": {"solver": slow}}]
    assert faults[0].signature == "solver slow solving" and list(simpler(faults[0])) == []
    verdicts = {}
    for variant in ("correct", "gives_up_not_ready"):
        base = Base.load(os.path.join(ROOT, "examples", "explore", "solver_client.yaml"), variant)
        path = tmp_path / f"{variant}.yaml"
        path.write_text(yaml.safe_dump(base.document(faults, seed=3)))
        r = harness("run", str(path), "--report-dir", str(tmp_path / variant), "-q")
        summary = json.loads((tmp_path / variant / "latest" / "summary.json").read_text())
        verdicts[variant] = (r.returncode, {i["name"]: i["ok"] for i in summary["invariants"] if i["exercised"]})
        events = read_journal(tmp_path / variant / "latest")
        not_ready = [e for e in events if e.kind == "response" and e.action == "res.php"
                     and "CAPCHA_NOT_READY" in str(e.get("body"))]
        assert len(not_ready) >= 3, variant   # the condition held: polls met a busy solver
    # INCONCLUSIVE, not PASS: with every pingback lost, the base's one_effect_per_inbound_event has
    # nothing to judge; every invariant that was exercised holds
    assert verdicts["correct"][0] == 3 and all(verdicts["correct"][1].values()), verdicts
    assert "one_effect_per_inbound_event" not in verdicts["correct"][1]
    assert verdicts["gives_up_not_ready"][0] == 1 and not verdicts["gives_up_not_ready"][1]["no_lost_solutions"]


def read_journal(run_dir):
    return read_events((run_dir / "journal.jsonl").read_bytes())
