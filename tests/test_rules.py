import pytest

from harness.faults import RuleEngine, parse_rules
from harness.faults.rules import RuleError

ISSUE_SHAPES = [
    {"match": {"service": "captcha", "action": "DescribeCaptchaResult"}, "effect": {"error": "InternalError"},
     "schedule": {"times": 3}},
    {"match": {"service": "captcha"}, "effect": {"captcha_code": 26}},
    {"match": {"service": "solver", "action": "in.php"}, "effect": {"error": "ERROR_NO_SLOT_AVAILABLE"},
     "schedule": {"probability": 0.3}},
    {"match": {"service": "solver", "action": "pingback"}, "effect": {"callback": "drop"}},
    {"match": {"service": "solver", "action": "pingback"}, "effect": {"callback": "duplicate", "count": 2}},
    {"effect": {"delay_ms": 1500}},
    {"effect": {"hang": True}},
    {"effect": {"reset": True}},
]


def fired(engine, n, service="captcha", action="DescribeCaptchaResult", params=None):
    return [engine.decide(service, action, params or {}) is not None for _ in range(n)]


def test_issue_shapes_parse():
    rules = parse_rules(ISSUE_SHAPES)
    assert [r.effect.callback for r in rules[3:5]] == ["drop", "duplicate"]
    assert rules[4].effect.count == 2 and rules[0].schedule.times == 3


@pytest.mark.parametrize("doc,where", [
    ({"effect": {"delay_ms": -1}}, "rules.effect.delay_ms"),
    ({"effect": {"hang": True}, "schedule": {"probability": 1.5}}, "rules.schedule.probability"),
    ({"effect": {"callback": "explode"}}, "rules.effect.callback"),
    ({"effect": {"error": "X"}, "matchh": {}}, "rules.matchh"),
    ({"effect": {}}, "rules.effect"),
    ({"match": {"params": {"a": {"regex": "("}}}, "effect": {"reset": True}}, "rules.match.params.a"),
    ({"effect": {"reset": True}, "schedule": {"window": {"start": "5s", "end": "1s"}}}, "rules.schedule.window"),
])
def test_invalid_rules_name_the_field(doc, where):
    with pytest.raises(RuleError) as e:
        parse_rules(doc)
    assert str(e.value).startswith(where + ":"), str(e.value)
    assert "\n" not in str(e.value)


def test_times_after_every():
    e = RuleEngine()
    e.add({"effect": {"error": "InternalError"}, "schedule": {"times": 3}})
    assert fired(e, 5) == [True, True, True, False, False]
    e = RuleEngine()
    e.add({"effect": {"error": "InternalError"}, "schedule": {"after": 2}})
    assert fired(e, 4) == [False, False, True, True]
    e = RuleEngine()
    e.add({"effect": {"error": "InternalError"}, "schedule": {"every": 3, "after": 1, "times": 2}})
    assert fired(e, 10) == [False, False, False, True, False, False, True, False, False, False]


def test_window_uses_run_clock():
    now = [100.0]
    e = RuleEngine(clock=lambda: now[0])
    e.add({"effect": {"reset": True}, "schedule": {"window": {"start": "2s", "end": "4s"}}})
    seen = []
    for t in (0.5, 2.0, 3.9, 4.0):
        now[0] = 100.0 + t
        seen.append(e.decide("x", "y") is not None)
    assert seen == [False, True, True, False]


def test_match_patterns():
    e = RuleEngine()
    e.add({"match": {"service": {"glob": "cap*"}, "params": {"Ticket": {"regex": "^terror_"}, "CaptchaType": 9}},
           "effect": {"captcha_code": 21}})
    assert e.decide("captcha", "A", {"Ticket": "terror_1001_1_2", "CaptchaType": 9})
    assert e.decide("captcha", "A", {"Ticket": "terror_1001_1_2", "CaptchaType": "9"})
    assert not e.decide("captcha", "A", {"Ticket": "t1", "CaptchaType": 9})
    assert not e.decide("chat", "A", {"Ticket": "terror_1", "CaptchaType": 9})
    assert not e.decide("captcha", "A", {"CaptchaType": 9})


def test_probability_is_deterministic_per_seed():
    def sequence(seed):
        e = RuleEngine(seed=seed)
        e.add(ISSUE_SHAPES[2])
        return fired(e, 200, "solver", "in.php")
    a, b, c = sequence(7), sequence(7), sequence(8)
    assert a == b
    assert a != c
    assert 30 < sum(a) < 90  # p = 0.3 of 200


def test_first_firing_rule_wins_and_others_are_recorded():
    events = []
    e = RuleEngine(record=events.append)
    a, b = e.add([{"effect": {"error": "A"}, "schedule": {"every": 2}}, {"effect": {"error": "B"}}])
    wins = [e.decide("s", "x").rule_id for _ in range(4)]
    assert wins == [b, a, b, a]
    decisions = [ev for ev in events if ev["kind"] == "decision"]
    assert len(decisions) == 8  # both rules count every matching call
    assert {d["reason"] for d in decisions if not d["fired"]} >= {"not an every-2 match", f"shadowed by {a}"}


def test_remove_and_clear():
    e = RuleEngine()
    (rid,) = e.add({"id": "mine", "effect": {"reset": True}})
    assert rid == "mine"
    assert e.remove("mine") and not e.remove("mine")
    e.add(ISSUE_SHAPES)
    assert len(e.list()) == len(ISSUE_SHAPES)
    e.clear()
    assert e.list() == [] and e.decide("captcha", "x") is None


def test_adding_an_existing_id_replaces_that_rule_in_place():
    events = []
    e = RuleEngine(record=events.append)
    assert e.add([{"id": "a", "effect": {"reset": True}}, {"effect": {"hang": True}}]) == ["a", "r1"]
    fired(e, 2, "s", "x")
    assert e.add({"id": "a", "effect": {"status": 503}}) == ["a"]
    listed = e.list()
    assert [r["id"] for r in listed] == ["a", "r1"]  # once, in its place (it used to be listed twice)
    assert listed[0]["effect"] == {"status": 503} and listed[0]["matched"] == 0 and listed[1]["matched"] == 2
    assert e.decide("s", "x").effect.status == 503
    assert events[-3]["kind"] == "rule_added" and events[-3].get("replaced") is True
    assert e.add({"id": "r2", "effect": {"reset": True}}) == ["r2"]
    assert e.add({"effect": {"reset": True}}) == ["r3"]  # generated ids skip explicit ones
    assert e.remove("a") and [r["id"] for r in e.list()] == ["r1", "r2", "r3"]


@pytest.mark.parametrize("n", [25, 5000])
def test_a_backtracking_regex_cannot_stall_the_loop(n):
    import time
    e = RuleEngine()
    e.add({"match": {"params": {"v": {"regex": "^(a+)+$"}}}, "effect": {"reset": True}})
    started = time.process_time()
    assert e.decide("s", "x", {"v": "a" * n + "!"}) is None  # Python's re: 0.5 s at 25, doubling per character
    assert e.decide("s", "x", {"v": "a" * n}) is not None
    assert time.process_time() - started < 0.05


@pytest.mark.parametrize("regex", [r"(a)\1", "a(?=b)", "(?<!x)a", "("])
def test_regexes_without_a_linear_time_match_are_refused_in_one_line(regex, capfd):
    with pytest.raises(RuleError) as err:
        parse_rules({"match": {"params": {"v": {"regex": regex}}}, "effect": {"reset": True}})
    assert str(err.value).startswith("rules.match.params.v: invalid regular expression") and "\n" not in str(err.value)
    assert capfd.readouterr().err == ""  # RE2 would log the error to stderr too


def test_regex_matching_survives_text_that_is_not_utf8():
    e = RuleEngine()
    e.add({"match": {"action": {"regex": "^Describe.$"}}, "effect": {"reset": True}})
    assert e.decide("s", "Describe\udce9") is not None  # a header byte aiohttp kept as a lone surrogate


def test_a_link_cut_twice_is_restored_by_one_removal():
    e = RuleEngine()
    cut = {"id": "cut.integration-solver", "match": {"link": "integration->solver"}, "effect": {"link_down": True}}
    e.add(cut)
    e.add(cut)  # two cut_link steps
    assert e.remove("cut.integration-solver")  # one restore_link
    assert e.decide(None, None, link="integration->solver") is None and e.list() == []
