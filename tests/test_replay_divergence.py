"""Replay is exact or says where it diverged (issue 19, item 4): every decision carries the
fingerprint of the request it was made for, and replay compares fingerprints and order."""

import json
import os
import subprocess
import sys

from harness.commands.replay import Recorded, compare
from harness.faults.engine import RuleEngine, fingerprint
from harness.faults.rules import Match
from harness.journal import read_events

# Two flows race for rule r1's first match: the good ticket and the bad one. The original run lets
# the good flow go first; the replay below lets the bad one win (the race going the other way).
SCENARIO = """\
name: racing-flows
extends: {base}
seed: 5
traffic:
  - name: good
    start: {good}
    vars: {{t: {{captcha_ticket: {{}}}}}}
    request: {{method: POST, path: /login, json: {{ticket: "${{t.ticket}}", randstr: "${{t.randstr}}"}}}}
  - name: bad
    start: {bad}
    vars: {{t: {{bad_ticket: {{kind: unknown}}}}}}
    request: {{method: POST, path: /login, json: {{ticket: "${{t.ticket}}", randstr: "${{t.randstr}}"}}}}
timeline:
  - at: 0s
    add_rules:
      - id: r1
        match: {{service: captcha, action: DescribeCaptchaResult, params: {{Ticket: {{glob: "*"}}}}}}
        effect: {{error: InternalError}}
        schedule: {{times: 1}}
expect:
  - journal_count: {{where: {{kind: decision, rule: r1, fired: true}}, min: 1}}
"""


def harness(*args):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120)


def test_a_decision_for_another_request_is_a_divergence(tmp_path):
    base = os.path.abspath("scenarios/_targets/captcha_backend.yaml")
    sc = tmp_path / "race.yaml"
    sc.write_text(SCENARIO.format(base=base, good="0s", bad="700ms"))
    reports = tmp_path / "reports"
    first = harness("run", str(sc), "--report-dir", str(reports))
    assert first.returncode == 0, first.stdout + first.stderr
    run_dir = os.path.realpath(reports / "latest")
    (d1,) = [e for e in read_events(os.path.join(run_dir, "journal.jsonl")) if e.kind == "decision" and e["n"] == 1]
    assert d1["fired"] and set(d1["matched"]) == {"service", "action", "params.Ticket"} and d1["fingerprint"]

    # the race goes the other way in the replay: r1's first match (n=1, fired, like the original)
    # now hits the bad ticket
    path = os.path.join(run_dir, "scenario.json")
    data = json.load(open(path))
    data["traffic"][0]["start"], data["traffic"][1]["start"] = "700ms", "0s"
    json.dump(data, open(path, "w"))
    again = harness("replay", run_dir)
    out = again.stdout + again.stderr
    assert again.returncode == 1, out
    line = next(x for x in again.stdout.splitlines() if x.startswith("diverged at decision"))
    assert line.startswith(f"diverged at decision 1: original <rule r1 match 1 fired on captcha DescribeCaptchaResult "
                           f"params.Ticket={d1['matched']['params.Ticket']!r}"), line
    assert ", replay <rule r1 match 1 fired on captcha DescribeCaptchaResult params.Ticket=" in line
    assert "Traceback" not in out


def test_compare_reports_the_first_divergence_in_the_original_order():
    def rec(index, rule, n, fired, ticket):
        fp, fields = fingerprint(Match(params={"Ticket": {"glob": "*"}}), "captcha", "Verify", {"Ticket": ticket}, None)
        return Recorded(index, rule, n, fired, fp, fields)
    original = {"a": [rec(1, "a", 1, True, "good"), rec(3, "a", 2, False, "bad")], "b": [rec(2, "b", 1, True, "x")]}
    same = {"a": [rec(2, "a", 1, True, "good"), rec(3, "a", 2, False, "bad")], "b": [rec(1, "b", 1, True, "x")]}
    assert compare(original, same) == (3, 3, None)  # rules interleaving differently is no divergence
    swapped = {"a": [rec(1, "a", 1, True, "bad"), rec(3, "a", 2, False, "good")], "b": [rec(2, "b", 1, True, "x")]}
    matching, total, first = compare(original, swapped)
    assert (matching, total) == (1, 3)
    assert first.startswith("diverged at decision 1: original <rule a match 1 fired on captcha Verify "
                            "params.Ticket='good'") and "replay <rule a match 1 fired on captcha Verify " \
                            "params.Ticket='bad'" in first
    shorter = {"a": original["a"][:1], "b": original["b"]}
    assert compare(original, shorter)[2] == ("diverged at decision 3: original <rule a match 2 not fired on "
                                             f"captcha Verify params.Ticket='bad' [{original['a'][1].fingerprint}]>, "
                                             "replay <no such decision>")


def test_every_decision_records_its_fingerprint():
    seen = []
    engine = RuleEngine(seed=1, record=seen.append)
    engine.add({"id": "r", "match": {"service": "captcha", "params": {"Ticket": {"glob": "*"}}},
                "effect": {"status": 500}})
    engine.decide("captcha", "Verify", {"Ticket": "t1", "Other": "x"})
    engine.decide("captcha", "Verify", {"Ticket": "t2", "Other": "x"})
    d1, d2 = [e for e in seen if e["kind"] == "decision"]
    assert d1["matched"] == {"service": "captcha", "action": "Verify", "params.Ticket": "t1"}
    assert d1["fingerprint"] != d2["fingerprint"] and len(d1["fingerprint"]) == 12
    assert fingerprint(Match(), "captcha", "Verify", {"Ticket": "t1"}, None)[0] == \
        fingerprint(Match(), "captcha", "Verify", {"Ticket": "t2"}, None)[0]  # only the fields it matches


def _field_values():
    from hypothesis import strategies as st
    return st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12),
                     st.text(alphabet="abc\"\\/\x00\x1f\x7f é\u2028", max_size=6),
                     st.lists(st.integers(), max_size=2),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def test_the_fingerprint_text_is_the_json_it_always_was():
    """The fingerprint's text is written by orjson where that gives the same bytes, by json.dumps
    elsewhere: replays compare against journals written before either, so not one byte may move."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from harness.faults.engine import _canonical_json

    @settings(max_examples=400, deadline=None)
    @given(st.dictionaries(st.text(max_size=8), _field_values(), max_size=5))
    def check(fields):
        assert _canonical_json(fields) == json.dumps(fields, sort_keys=True, separators=(",", ":"),
                                                     default=str).encode()
    check()
    assert _canonical_json({"service": "captcha", "action": "DescribeCaptchaResult", "params.Ticket": "t1"}) == \
        b'{"action":"DescribeCaptchaResult","params.Ticket":"t1","service":"captcha"}'
