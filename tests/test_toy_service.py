"""A service is one folder and one registry entry: a toy echo service registered from this test
runs a scenario through ``harness run`` — its mock behind a Toxiproxy link and mitmdump, a fault rule
applied at the mitm link, the journal, one of its variable kinds and its own invariant — with no
change to the core. (Follows "Add a service" in docs/architecture.md.)"""

import json
import os
from types import SimpleNamespace

import pytest
from pydantic import Field

from harness.cli import main as harness_main
from harness.journal import read_events
from harness.proxy.raw_request import action_and_params
from harness.verdict.base import REGISTRY, Facts, Params, Result, brief, invariant, not_exercised
from mocks import registry
from tests.echo_service import EchoMock

# --- the toy service: what mocks/toy/ would hold ----------------------------------------------------
vocabulary = SimpleNamespace(SERVICE="toy", SAY="say", WORD="w", WORD_KIND="toy_word")


class ToyMock(EchoMock):             # mock.py: echoes the request's params back (tests/echo_service.py)
    name = vocabulary.SERVICE


def parse_raw_request(method, path, params, headers, body):   # raw_request.py
    return path.strip("/") or "root", params


def toy_word(spec, ctx):             # variables.py: a seeded word to echo
    return f"{spec or 'word'}-{ctx.rng.randrange(10**9)}"


class EchoedParams(Params):
    flow: str = Field(description="the flow whose words are checked")


def register_invariants():           # invariants.py
    @invariant("toy_words_echoed", EchoedParams)
    def toy_words_echoed(facts: Facts, p: EchoedParams) -> Result:
        """A word the mock heard came back to the driver; a word the proxy refused never reached it."""
        heard = {(e.get("params") or {}).get(vocabulary.WORD)
                 for e in facts.of("request", vocabulary.SERVICE, vocabulary.SAY)}
        sent, bad, refused = facts.driver(p.flow), [], 0
        for d in sent:
            word = (d.get("vars") or {}).get("word")
            if d.get("status") == 200:
                answer = d.get("response") if isinstance(d.get("response"), dict) else {}
                ok = word in heard and (answer.get("echo") or {}).get(vocabulary.WORD) == word
            else:
                refused += 1
                ok = word not in heard
            if not ok:
                bad.append(brief(d, "status", "vars"))
        if not sent:
            return not_exercised("toy_words_echoed", "no word was sent")
        return Result("toy_words_echoed", not bad, f"{len(sent) - refused} echoed, {refused} refused at the proxy",
                      bad, {"sent": len(sent), "refused": refused})


TOY = registry.Service(              # spec.py: the registry entry
    name=vocabulary.SERVICE, mock=ToyMock, vocabulary=vocabulary, parse_raw_request=parse_raw_request,
    var_kinds={vocabulary.WORD_KIND: toy_word}, invariants=register_invariants,
    activity_actions=(vocabulary.SAY,))

SCENARIO = """\
name: toy-echo
seed: 5
services:
  toy: {greeting: hi}
links:
  - {name: integration->toy, mitm: true}
traffic:
  - name: say
    count: 6
    vars:
      word: {toy_word: hello}
    request: {method: GET, url: "${toy.url}/say", query: {w: "${word}"}}
timeline:
  - at: 0s
    add_rules:
      - id: refuse
        match: {link: integration->toy, action: say}
        effect: {status: 503, body: refused by the proxy}
        schedule: {times: 2}
expect:
  - toy_words_echoed: {flow: say}
  - journal_count: {where: {kind: proxy.flow, link: integration->toy, outcome: replaced}, min: 2, max: 2}
"""


@pytest.fixture()
def toy():
    registry.register(TOY)
    try:
        yield TOY
    finally:
        registry.unregister(TOY.name)
        REGISTRY.pop("toy_words_echoed", None)


def test_toy_service_runs_a_scenario_with_rule_mitm_link_journal_and_its_invariant(toy, tmp_path, capsys):
    assert "toy_words_echoed" in REGISTRY           # registered with the service
    scenario = tmp_path / "toy.yaml"
    scenario.write_text(SCENARIO)
    reports = tmp_path / "reports"
    code = harness_main(["run", str(scenario), "--report-dir", str(reports)])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    run_dir = os.path.realpath(reports / "latest")
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert summary["ok"] and summary["counts"]["faults"] == 2
    results = {r["name"]: r for r in summary["invariants"]}
    assert results["toy_words_echoed"]["ok"] and results["toy_words_echoed"]["counts"] == {"sent": 6, "refused": 2}
    events = read_events(os.path.join(run_dir, "journal.jsonl"))
    fired = [e for e in events if e.kind == "decision" and e.get("rule") == "refuse" and e.get("fired")]
    assert [e.get("link") for e in fired] == ["integration->toy"] * 2
    driver = [e for e in events if e.kind == "driver"]
    assert sorted(e.get("status") for e in driver) == [200] * 4 + [503] * 2
    assert all(e["vars"]["word"].startswith("hello-") for e in driver)
    assert len([e for e in events if e.kind == "request" and e.service == "toy"]) == 4  # the mock saw 4
    assert ">toy (4)</text>" in open(os.path.join(run_dir, "report.html")).read()  # its lane: 4 answers
    # the proxies' reading of a raw request, for when the host runs no toy mock
    assert action_and_params("toy", "GET", "/say", [("w", "x")], {}, b"") == ("say", {"w": "x"})


def test_a_service_name_is_registered_once(toy):
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.Service(name="toy", mock=ToyMock))
