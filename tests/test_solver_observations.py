"""What the solver invariants observe: a use seen on a mitm link (``use_on_mitm_links``), evidence that
says what was seen where a use was missing, ``body.request`` on plain-text replies, settling that
watches tasks ended unsolvable, and solutions whose task id never reached the client.

Hand-built journals for each rule, then real runs against ``tests/foreign_solver/client.py`` (a
plain-text client that delivers solutions to a third-party URL of its own) and the unmodified
2captcha-python SDK (``examples/twocaptcha_client``)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.journal import Event, kinds, read_events
from harness.verdict import evaluate, settled

REPO = Path(__file__).resolve().parent.parent


class J:
    def __init__(self):
        self.events = []

    def add(self, kind, t, service=None, action=None, **data):
        where = {k: v for k, v in (("service", service), ("action", action)) if v is not None}
        self.events.append(Event.from_dict(kinds.get(kind).partial(seq=len(self.events) + 1, t=t, **where, **data)))
        return self

    def task(self, tid, token, t=0.0, outcome="delivered", solved="solved"):
        self.add("response", t, "solver", "in.php", rid=f"s{tid}", status=200, body=f"OK|{tid}", outcome="delivered")
        if outcome != "delivered":  # the write failed: a second event for the same request says so
            self.add("response", t + 0.01, "solver", "in.php", rid=f"s{tid}", status=None, outcome=outcome)
        return self.add("solution", t + 0.5, "solver", None, task=tid, token=token, outcome=solved)

    def site(self, t, status, error=None, **params):
        rid = f"u{len(self.events)}"
        self.add("request", t, "solver", "site.submit", rid=rid, method="POST", path="/site/submit", params=params)
        body = {"ok": status == 200, **({"error": error} if error else {})}
        return self.add("response", t, "solver", "site.submit", rid=rid, status=status, body=body, outcome="delivered")

    def seen(self, t, token, fid, outcome="forwarded", status=200, link="integration->shop"):
        self.add("solution_seen", t, "solver", None, token=token, task="x", link=link, ref=fid, method="POST",
                 path="/deliver", where="json")
        return self.add("proxy.flow", t + 0.01, None, None, link=link, fid=fid, method="POST", path="/deliver",
                        outcome=outcome, status=status)

    def poll(self, tid, t):
        return self.add("request", t, "solver", "res.php", params={"action": "get", "id": tid})


def results(j, *expect, now=1000):
    return {r.name: r for r in evaluate(list(expect), j.events, now=now).results}


def test_lost_solutions_say_what_the_site_answered_instead():
    j = J()
    for i in range(6):
        j.task(str(i), f"tok{i}", t=i).site(i + 1, 400, "missing token", solution=f"tok{i}", task_id=str(i))
    j.site(9, 403, "unknown token", token="forged")
    r = results(j, {"no_lost_solutions": {"deadline": "5s"}})["no_lost_solutions"]
    assert not r.ok and r.counts["lost"] == 6
    assert ("the site answered 400 missing token to 6 submits, 403 unknown token to 1 submit "
            "(fields sent: solution, task_id)") in r.summary


def test_lost_solutions_name_requests_to_unserved_paths_and_mitm_flows():
    j = J().task("1", "tok1")
    j.add("request", 2, "solver", "not_found", rid="n1", method="POST", path="/checkout/verify", params={})
    j.add("proxy.flow", 2, None, None, link="integration->shop", fid="f1", method="POST", path="/deliver?x=1",
          outcome="forwarded", status=200)
    j.add("proxy.flow", 2, "solver", "res.php", link="integration->solver", fid="f2", method="GET",
          path="/res.php", outcome="forwarded", status=200)  # a poll: not where a use was expected
    r = results(j, {"no_lost_solutions": {}})["no_lost_solutions"]
    assert not r.ok
    assert "1 requests to paths the solver mock does not serve (POST /checkout/verify ×1)" in r.summary
    assert "1 requests on mitm links counted as no use (POST /deliver on integration->shop ×1" in r.summary
    assert "res.php" not in r.summary


def test_a_solution_seen_on_a_mitm_link_is_a_use():
    j = J().task("1", "a").seen(1, "a", "f1")
    j.task("2", "b").seen(1, "b", "f2", outcome="reset", status=None)           # never reached the site: no use
    j.task("3", "c").seen(1, "c", "f3", outcome="dropped", status=None).seen(2, "c", "f4")  # retry of a lost answer
    j.task("4", "d").seen(1, "d", "f5").seen(2, "d", "f6")                       # used twice
    r = results(j, {"no_lost_solutions": {}}, {"solutions_used_exactly_once": {}})
    lost, once = r["no_lost_solutions"], r["solutions_used_exactly_once"]
    assert [e["task"] for e in lost.evidence] == ["2"]
    assert [e["task"] for e in once.evidence] == ["4"]
    assert "6 solutions seen on mitm links" in lost.summary and "counted as no use" not in lost.summary


def test_a_task_whose_in_php_answer_never_reached_the_client_is_not_lost():
    j = J().task("1", "a", outcome="client_gone").task("2", "b", outcome="partial").task("3", "c")
    j.site(2, 200, token="c")
    r = results(j, {"no_lost_solutions": {"deadline": "5s"}})["no_lost_solutions"]
    assert r.ok and r.counts["unclaimed"] == 2 and r.counts["lost"] == 0
    assert "2 not judged (their in.php answer never reached the integration, or crossed a faulty link" in r.summary
    # nor does the run wait for their use until the deadline
    assert settled([{"no_lost_solutions": {"deadline": "30s"}}], j.events, now=3)
    j.task("4", "d")
    assert not settled([{"no_lost_solutions": {"deadline": "30s"}}], j.events, now=3)


def test_a_task_whose_in_php_answer_crossed_a_faulty_link_and_was_never_asked_about_is_not_lost():
    """A Toxiproxy latency past the client's timeout holds the answer the mock delivered: the journal
    cannot tell whether the client got the id. Never asked about afterwards, the task is not judged;
    polled, the client had its id and lost the solution; outside the toxic, it is lost as before."""
    link = "integration->solver"
    j = J().add("toxic", 0.9, op="added", link=link, rule="r1", toxic="latency")
    j.task("1", "a", t=1.0).task("2", "b", t=1.0).poll("2", 2.0)
    j.add("toxic", 1.5, op="removed", link=link, rule="r1", toxic="latency")
    j.task("3", "c", t=3.0)
    j.add("toxic", 3.5, op="added", link="integration->redis", rule="r2", toxic="latency").task("4", "d", t=3.6)
    r = results(j, {"no_lost_solutions": {"deadline": "5s"}})["no_lost_solutions"]
    assert r.counts["unclaimed"] == 1 and r.counts["lost"] == 3
    assert sorted(e["task"] for e in r.evidence) == ["2", "3", "4"]


def _polls(j, tid, answers, start=1.0):
    for i, (status, body, extra) in enumerate(answers):
        rid = f"p{tid}-{i}"
        j.add("request", start + i, "solver", "res.php", rid=rid, params={"action": "get", "id": tid})
        j.add("response", start + i, "solver", "res.php", rid=rid, status=status, body=body, **extra)
    return j


REFUSED = (500, "", {"outcome": "delivered", "rule": "x1"})


def test_a_solution_the_solver_refused_to_every_poll_is_withheld_not_lost():
    """A client that asked for a solution again and again and was refused every time (its own
    deadline then ran out) did not lose it; one that was refused less often, or was given it, did."""
    j = J()
    _polls(j.task("1", "tok1"), "1", [REFUSED] * 3)                         # withheld
    _polls(j.task("2", "tok2"), "2", [REFUSED] * 2)                         # gave up after 2: lost
    _polls(j.task("3", "tok3"), "3", [REFUSED, REFUSED, (200, "OK|tok3", {"outcome": "delivered"})])  # given: lost
    _polls(j.task("4", "tok4"), "4", [REFUSED, REFUSED, (200, "OK|tok4", {"outcome": "client_gone"})])  # withheld
    # the ask before it existed does not count: 2 refusals, lost
    _polls(j.task("5", "tok5"), "5", [(200, "CAPCHA_NOT_READY", {"outcome": "delivered"}), REFUSED, REFUSED],
           start=0.1)
    # a slow solver: refused before the solution existed and after it (explore: the 2captcha client's
    # patience ran out under 6 s delays of every poll): withheld
    _polls(j.task("6", "tok6", t=1.6), "6", [REFUSED, REFUSED, REFUSED])
    # … but it must have asked after the solution existed: refused 3 times, then it stopped: lost
    _polls(j.task("7", "tok7", t=3.6), "7", [REFUSED, REFUSED, REFUSED])
    r = results(j, {"no_lost_solutions": {"deadline": "5s"}})["no_lost_solutions"]
    assert [e["task"] for e in r.evidence] == ["2", "3", "5", "7"]
    assert r.counts["withheld"] == 3 and r.counts["lost"] == 4
    assert "3 not judged (withheld: faults answered 3 or more polls for each, and every poll after it was solved)" in r.summary
    # nothing but withheld solutions: nothing was judged, so no PASS
    r = results(_polls(J().task("1", "tok1"), "1", [REFUSED] * 3), {"no_lost_solutions": {}})["no_lost_solutions"]
    assert not r.exercised and "none of the 1 solutions could be judged" in r.summary

def test_journal_count_matches_body_request_of_plain_text_replies_and_says_what_it_saw():
    j = J()
    for i, body in enumerate(["ERROR_NO_SLOT_AVAILABLE", "ERROR_NO_SLOT_AVAILABLE", "OK|7"]):
        j.add("response", i, "solver", "in.php", rid=f"r{i}", status=200, body=body, outcome="delivered")
    j.add("response", 5, "solver", "res.php", rid="p", status=200, body={"status": 0, "request": "CAPCHA_NOT_READY"})
    where = {"kind": "response", "service": "solver", "action": "in.php"}
    both = evaluate([{"journal_count": {"where": {**where, "body.request": "ERROR_NO_SLOT_AVAILABLE"}, "min": 2,
                                        "max": 2}},
                     {"journal_count": {"where": {**where, "body.status": 1, "body.request": "7"}, "min": 1,
                                        "max": 1}}], j.events).results
    assert [x.ok for x in both] == [True, True]
    # plain-text JSON and forms read as fields too; a value that is neither does not
    j.add("response", 6, "other", "x", rid="o1", status=200, body='{"a": {"b": 3}}')
    j.add("response", 7, "other", "x", rid="o2", status=200, body="a=1&b=2")
    j.add("response", 8, "other", "x", rid="o3", status=200, body="OK|5")
    none = evaluate([{"journal_count": {"where": {"kind": "response", "body.a.b": 3}, "min": 1, "max": 1}},
                     {"journal_count": {"where": {"kind": "response", "body.b": "2"}, "min": 1, "max": 1}},
                     {"journal_count": {"where": {"kind": "response", "service": "other", "body.request": "5"},
                                        "max": 0}}], j.events).results
    assert [x.ok for x in none] == [True, True, True]
    miss = evaluate([{"journal_count": {"where": {**where, "body.request": "ERROR_ZERO_BALANCE"}, "min": 1}}],
                    j.events).results[0]
    assert not miss.ok
    assert miss.evidence == [{"matched": 0, "all_but": "body.request", "near": 3,
                              "seen": "ERROR_NO_SLOT_AVAILABLE ×2, 7 ×1"}]
    assert "3 match all but body.request (seen: ERROR_NO_SLOT_AVAILABLE ×2, 7 ×1)" in miss.summary


def test_settling_watches_tasks_that_ended_unsolvable():
    expect = [{"poll_rate_bounded": {"max_per_task": 4, "watch": "3s"}}]
    j = J().task("1", "", solved="unsolvable", t=0).poll("1", 1)
    assert not settled(expect, j.events, now=2)      # polled 1 s ago: watch on
    assert settled(expect, j.events, now=4.5)        # quiet for 3 s: a client that stopped
    for k in range(4):
        j.poll("1", 2 + k)
    assert settled(expect, j.events, now=5.5)        # 5 polls > 4: caught, nothing more to wait for
    r = results(j, *expect, now=5.5)["poll_rate_bounded"]
    assert not r.ok and r.evidence == [{"task": "1", "polls": 5, "max": 4, "after_unsolvable": 5}]
    assert settled([{"poll_rate_bounded": {"max_rate": 3}}], j.events, now=0.6)  # no per-task bound: no watch


# --- real runs ---------------------------------------------------------------------------------

PROFILE = """\
# a plain-text solver client that delivers solutions to a third-party site through a mitm link
name: foreign-solver
target:
  command: python {client}
  env:
    PORT: "${{target.port}}"
    SOLVER_URL: "${{solver.url}}"
    SOLVER_KEY: c0ffee00c0ffee00c0ffee00c0ffee00
    DELIVER_URL: "http://${{shop.host}}:${{shop.port}}/deliver"
    POLL_S: "{poll}"
    VARIANT: "${{target.variant}}"
  ready: {{path: /health, timeout: 15s}}
links:
  - {{name: integration->shop, upstream: "127.0.0.1:{shop}", mitm: true}}
services:
  solver:
    config: {{use_on_mitm_links: true, solve_min_s: 0.2, solve_max_s: 0.4}}
    calls: [in.php, res.php]
    requests:
      submit: {{method: POST, path: /jobs, json: {{sitekey: "6Le-site-key-${{n}}", pageurl: "https://shop.example/"}}}}
"""


class Shop:
    """The third-party site the client delivers solutions to."""

    def __init__(self):
        shop = self
        self.received: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                shop.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def shop():
    s = Shop()
    yield s
    s.close()


def run(tmp_path: Path, body: str, *args: str, poll: float = 0.5, shop_port: int = 9) -> dict:
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE.format(client=REPO / "tests/foreign_solver/client.py", poll=poll, shop=shop_port))
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"profile: {profile}\nseed: 3\nmax_duration: 30s\n" + textwrap.dedent(body))
    reports = tmp_path / "reports"
    r = subprocess.run([sys.executable, "-m", "harness", "run", str(scenario), "-q", "--report-dir", str(reports),
                        *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    run_dir = (reports / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"code": r.returncode, "dir": run_dir, "summary": summary,
            "inv": [(i["name"], i["ok"], i["summary"]) for i in summary["invariants"]]}


def test_foreign_client_uses_solutions_at_a_third_party_site_through_a_mitm_link(tmp_path, shop):
    out = run(tmp_path, """\
        name: foreign-mitm-use
        traffic:
          - {name: solve, count: 3, rate: 5, request: "${profile.solver.submit}"}
        timeline:
          - at: 0s
            add_rules:
              - match: {service: solver, action: in.php}
                effect: {error: ERROR_NO_SLOT_AVAILABLE}
                schedule: {times: 2}
        expect:
          - no_lost_solutions: {deadline: 6s}
          - solutions_used_exactly_once: {deadline: 6s}
          - journal_count: {where: {kind: response, service: solver, action: in.php, body.request: ERROR_NO_SLOT_AVAILABLE}, min: 2, max: 2}
          - journal_count: {where: {kind: solution_seen, link: integration->shop, where: json}, min: 3, max: 3}
        """, shop_port=shop.port)
    assert out["code"] == 0, out["inv"]
    tokens = [e["token"] for e in read_events(str(out["dir"] / "journal.jsonl")) if e.kind == "solution"]
    assert sorted(d["captcha"]["response"] for d in shop.received) == sorted(tokens) and len(tokens) == 3


@pytest.mark.parametrize("variant,caught", [("", False), ("poll_forever", True)])
def test_settling_catches_a_client_polling_an_unsolvable_task_for_ever(tmp_path, shop, variant, caught):
    out = run(tmp_path, """\
        name: foreign-unsolvable
        services:
          solver: {unsolvable_tasks: [1]}
        traffic:
          - {name: solve, count: 3, rate: 5, request: "${profile.solver.submit}"}
        expect:
          - no_lost_solutions: {deadline: 6s}
          - poll_rate_bounded: {max_per_task: 6, watch: 3s}
        """, "--variant", variant, poll=0.8, shop_port=shop.port)
    verdicts = {name: ok for name, ok, _ in out["inv"]}
    assert verdicts == {"no_lost_solutions": True, "poll_rate_bounded": not caught}, out["inv"]


def test_a_submit_answer_cut_off_is_not_a_lost_solution(tmp_path, shop):
    out = run(tmp_path, """\
        name: foreign-cut-submit
        traffic:
          - {name: solve, count: 2, rate: 5, request: "${profile.solver.submit}"}
        timeline:
          - at: 0s
            add_rules:
              - match: {service: solver, action: in.php}
                effect: {partial_body: 2}
                schedule: {times: 1}
        expect:
          - no_lost_solutions: {deadline: 5s}
          - solutions_used_exactly_once: {deadline: 5s}
          - journal_count: {where: {kind: solution, service: solver}, min: 3, max: 3}
        """, shop_port=shop.port)
    assert out["code"] == 0, out["inv"]
    lost = next(s for name, _, s in out["inv"] if name == "no_lost_solutions")
    assert "1 not judged (their in.php answer never reached the integration, or crossed a faulty link" in lost


def test_sdk_client_lost_solutions_name_the_site_answers(tmp_path):
    """The 2captcha-python service sends ``token``; a site configured for ``solution`` answers 400
    missing token, and the lost solutions say so."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(textwrap.dedent(f"""\
        name: sdk-site-field-mismatch
        profile: {REPO / "examples/twocaptcha_client/profile.yaml"}
        seed: 4
        max_duration: 30s
        tls: [solver]
        services:
          solver: {{solve_min_s: 0.1, solve_max_s: 0.2, site_token_field: solution}}
        traffic:
          - {{name: solve, count: 2, concurrency: 2, timeout: 20s, request: "${{profile.solver.submit}}"}}
        expect:
          - no_lost_solutions: {{deadline: 3s}}
        """))
    r = subprocess.run([sys.executable, "-m", "harness", "run", str(scenario), "-q", "--report-dir",
                        str(tmp_path / "r")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    summary = json.loads(((tmp_path / "r" / "latest").resolve() / "summary.json").read_text())
    (inv,) = summary["invariants"]
    assert "2 lost" in inv["summary"]
    assert "the site answered 400 missing token to 2 submits (fields sent: task, token)" in inv["summary"], inv["summary"]


def test_tokens_are_found_wherever_a_request_carries_them():
    from mocks.solver.sightings import find_tokens
    answers = {"03AGdBq-tok_1": 1, "03AGdBq-tok_2": 2, "abcde7": 3}
    assert find_tokens(answers, "/v?x=03AGdBq-tok_1", [], b"") == {"03AGdBq-tok_1": "query"}
    assert find_tokens(answers, "/v", [("Authorization", "Bearer 03AGdBq-tok_2")], b"") == {"03AGdBq-tok_2": "header"}
    assert find_tokens(answers, "/v", [], b'{"a": [{"b": {"c": "abcde7"}}]}') == {"abcde7": "json"}
    assert find_tokens(answers, "/v", [], b"g-recaptcha-response=03AGdBq-tok_1&x=1") == {"03AGdBq-tok_1": "form"}
    assert find_tokens(answers, "/v", [], b"solution: 03AGdBq-tok_2\nbye") == {"03AGdBq-tok_2": "body"}
    assert find_tokens(answers, "/v", [("X", "03AGdBq-tok_3")], b"abcde") == {}  # only exact known tokens


def test_a_profiles_links_join_the_scenarios(tmp_path):
    from harness.scenario import load_scenario
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE.format(client=REPO / "tests/foreign_solver/client.py", poll=0.5, shop=9000))
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: x\nlinks: [integration->solver]\ntraffic: [{name: a, request: "
                        "'${profile.solver.submit}'}]\n")
    sc = load_scenario(str(scenario), profile=str(profile))
    assert [(k.name, k.upstream, k.mitm) for k in sc.links] == [("integration->solver", None, False),
                                                               ("integration->shop", "127.0.0.1:9000", True)]
    scenario.write_text("name: x\nlinks: [{name: integration->shop, upstream: '127.0.0.1:1'}]\n"
                        "traffic: [{name: a, request: '${profile.solver.submit}'}]\n")
    assert [(k.name, k.upstream) for k in load_scenario(str(scenario), profile=str(profile)).links] == [
        ("integration->shop", "127.0.0.1:1")]  # the scenario's own declaration wins


def test_settling_does_not_wait_for_a_stalled_task_but_watches_its_polls():
    """A task the solver will never finish (planned stalled) has no outcome to wait for; its polls
    are watched like an unsolvable task's (a client polling it for ever shows itself)."""
    deadline = [{"no_lost_solutions": {"deadline": "30s"}}]
    watch = [{"poll_rate_bounded": {"max_per_task": 4, "watch": "3s"}}]
    j = J().add("response", 0, "solver", "in.php", rid="s9", status=200, body="OK|9", outcome="delivered")
    assert not settled(deadline, j.events, now=3)    # an ordinary task: its outcome is awaited
    j.add("task_accepted", 0, "solver", None, task="9", n=1, planned="stalled", solve_s=None, profile=None,
          pingback=False)
    assert settled(deadline, j.events, now=3)
    j.poll("9", 1)
    assert not settled(watch, j.events, now=2)       # polled 1 s ago: watch on
    assert settled(watch, j.events, now=4.5)         # quiet for 3 s: the client gave it up
    for k in range(4):
        j.poll("9", 5 + k)
    assert settled(watch, j.events, now=9)           # 5 polls > 4: caught, nothing more to wait for
