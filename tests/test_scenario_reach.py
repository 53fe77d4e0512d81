"""Static checks (issue 19, item 2): a rule, step, window or expectation that could never take
effect is refused when the scenario is loaded — one line naming file, line and field — instead of
leaving a run that silently tested nothing."""

import subprocess
import sys

import pytest

from harness.scenario import ScenarioError, load_scenario
from mocks.registry import SERVICES, actions

HEAD = "name: x\nservices: {captcha: {}, solver: {}}\nlinks: [integration->captcha]\n"
RULE = HEAD + "timeline:\n  - at: 1s\n    add_rules:\n      - {RULE}\n"

CASES = [
    # a typo in the service: the rule would never match anything
    (RULE.replace("{RULE}", "{match: {service: captchaa}, effect: {status: 500}}"),
     ":7: timeline[0].add_rules[0].match.service: unknown service 'captchaa'"),
    # an action the service never journals
    (RULE.replace("{RULE}", "{match: {service: captcha, action: DescribeCaptchaResul}, effect: {status: 500}}"),
     ":7: timeline[0].add_rules[0].match.action: 'DescribeCaptchaResul' is not one of captcha's actions"),
    (RULE.replace("{RULE}", "{match: {action: pingbak}, effect: {callback: drop}}"),
     ":7: timeline[0].add_rules[0].match.action: 'pingbak' is not one of any service's actions"),
    # a callback fault on a service that sends no callbacks
    (RULE.replace("{RULE}", "{match: {service: captcha}, effect: {callback: drop}}"),
     ":7: timeline[0].add_rules[0].effect.callback: captcha sends no callbacks"),
    # a mock rule for a service this scenario does not run
    (RULE.replace("{RULE}", "{match: {service: chat}, effect: {status: 500}}"),
     ":7: timeline[0].add_rules[0].match.service: no mock of 'chat' runs in this scenario"),
    (RULE.replace("{RULE}", "{match: {action: openim/sendmsg}, effect: {status: 500}}"),
     ":7: timeline[0].add_rules[0].match: no service of this scenario runs a mock with the action 'openim/sendmsg'"),
    # a toxic on a link the scenario does not declare; a mitm effect with no mitm link
    (RULE.replace("{RULE}", "{match: {link: integration->solver}, effect: {toxic: latency}}"),
     ":7: timeline[0].add_rules[0].match.link: selects none of this scenario's links (integration->captcha)"),
    (RULE.replace("{RULE}", "{match: {service: captcha}, effect: {drop_response: true}}"),
     ":7: timeline[0].add_rules[0].effect: the mitmproxy addon applies this rule on a link, and this scenario "
     "declares no links with mitm: true"),
    # times beyond max_duration: never played, never fired
    (HEAD + "max_duration: 2s\ntimeline:\n  - at: 100s\n    note: late\n",
     ":6: timeline[0].at: 100s is at or beyond max_duration (2s): the step would never play"),
    (HEAD + "max_duration: 2s\ntimeline:\n  - at: 0s\n    add_rules:\n"
     "      - {effect: {status: 500}, schedule: {window: {start: 5s}}}\n",
     ":8: timeline[0].add_rules[0].schedule.window.start: 5s is at or beyond max_duration (2s)"),
    # two rules with one id in one file
    (HEAD + "timeline:\n  - at: 0s\n    add_rules:\n      - {id: r1, effect: {status: 500}}\n"
     "  - at: 1s\n    add_rules:\n      - {id: r1, effect: {status: 503}}\n",
     ":10: timeline[1].add_rules[0].id: rule id 'r1' is already used by timeline[0].add_rules[0] (line 7)"),
    # an invariant of a service the scenario does not run
    (HEAD + "expect:\n  - webhook_acknowledged: {}\n",
     ":5: expect[0].webhook_acknowledged: an invariant of the chat service, which this scenario does not run"),
]


@pytest.mark.parametrize("doc,expected", CASES)
def test_what_could_never_take_effect_is_refused(tmp_path, doc, expected):
    f = tmp_path / "x.yaml"
    f.write_text(doc)
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(f))
    msg = str(e.value)
    assert f"x.yaml{expected}" in msg, msg
    assert "\n" not in msg


ACCEPTED = [
    # patterns are not checked; a plain name of the service's vocabulary is
    "{match: {service: captcha, action: {glob: 'Describe*'}}, effect: {status: 500}}",
    "{match: {service: {regex: '^cap'}, action: DescribeCaptchaMiniResult}, effect: {status: 500}}",
    "{match: {service: solver, action: pingback}, effect: {callback: drop}}",
    "{match: {link: integration->captcha}, effect: {toxic: latency, attributes: {latency: 100}}}",
    "{match: {link: {glob: 'integration->*'}}, effect: {link_down: true}}",
]


@pytest.mark.parametrize("rule", ACCEPTED)
def test_rules_that_can_fire_are_accepted(tmp_path, rule):
    f = tmp_path / "ok.yaml"
    f.write_text(RULE.replace("{RULE}", rule))
    assert load_scenario(str(f)).name == "x"


def test_an_id_may_come_back_after_its_rule_was_removed(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text(HEAD + "timeline:\n  - at: 0s\n    add_rules: [{id: r1, effect: {status: 500}}]\n"
                 "  - at: 1s\n    remove_rules: [r1]\n  - at: 2s\n    add_rules: [{id: r1, effect: {status: 503}}]\n")
    assert load_scenario(str(f)).name == "x"


def test_each_service_lists_its_actions():
    for name in SERVICES:
        assert actions(name), f"{name}: its vocabulary has no ACTIONS"
    from mocks.chat.commands import COMMANDS
    assert set(COMMANDS) <= actions("chat")  # a REST command added to the mock is in the vocabulary


def test_cli_validate_refuses_with_exit_2(tmp_path):
    (tmp_path / "typo.yaml").write_text(RULE.replace("{RULE}", "{match: {service: captchaa}, effect: {status: 500}}"))
    r = subprocess.run([sys.executable, "-m", "harness", "validate", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "typo.yaml:7: timeline[0].add_rules[0].match.service: unknown service 'captchaa'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp_path / "typo.yaml")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "captchaa" in r.stderr
