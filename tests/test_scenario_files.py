"""Scenario files: one-line errors naming file, line and field; limits; extends; schema."""

import json
import subprocess
import sys

import jsonschema_rs
import pytest
import yaml

from harness.commands.schema import scenario_schema
from harness.scenario import ScenarioError, discover, load_scenario
from harness.scenario.loader import load_document

GOOD = """\
name: ok
traffic:
  - name: login
    request: {method: POST, path: /login}
expect:
  - all_requests_succeeded: {}
"""

CASES = [
    ("timeline:\n  - at: 1s\n    note: a\n  - at: soon\n    note: b\n", ":4: timeline[1].at: expected a duration"),
    ("timeline:\n  - at: 1" + "0" * 400 + "\n    note: a\n", ":2: timeline[0].at: duration too large"),
    ("links: [integration->solver, nope]\n", ":1: links[1]: expected \"from->to\""),
    ("expect:\n  - no_lost_solutions: {deadline: never}\n", ":2: expect[0].no_lost_solutions.deadline:"),
    ("expect:\n  - no_such_invariant: {}\n", ":2: expect[0].no_such_invariant: unknown invariant"),
    ("timeline:\n  - at: 1s\n    add_rules:\n      - effect: {delay_ms: -1}\n",
     ":4: timeline[0].add_rules[0].effect.delay_ms:"),
    ("timeline:\n  - at: 1s\n", ":2: timeline[0]: give exactly one action"),
    ("services:\n  nosuch: {}\n", ":2: services.nosuch: unknown service"),
    ("bogus: 1\n", ":1: bogus: unknown field"),
    # a key that is blank or holds a dot is quoted, so the field stays readable (found by the fuzz test)
    ("' ': 1\n", ':1: [" "]: unknown field'),
    ("services:\n  captcha: {a.b: 1}\n", ':2: services.captcha["a.b"]: unknown config key'),
    ("traffic:\n  - name: a\n    request: {method: FETCH}\n", ":3: traffic[0].request.method:"),
    ("traffic: [\n", ":2: invalid YAML"),
    ("name: a\nname: b\n", ":2: duplicate key 'name'"),
    # checked at load time, not when the run gets there (issue 17)
    ("services:\n  captcha: {no_such_key: 1}\n", ":2: services.captcha.no_such_key: unknown config key"),
    ("services:\n  captcha:\n    ticket_lifetime_s: -1\n", ":3: services.captcha.ticket_lifetime_s: Input should be"),
    ("services:\n  captcha: {}\ntimeline:\n  - at: 1s\n    stop_service: chat\n",
     ":5: timeline[0].stop_service: 'chat' is not a service of this scenario"),
    ("services:\n  captcha: {}\ntimeline:\n  - at: 1s\n    set_config: {captcha: {nope: 1}}\n",
     ":5: timeline[0].set_config.captcha.nope: unknown config key"),
    ("timeline:\n  - at: 1s\n    set_config: {chat: {}}\n", ":3: timeline[0].set_config.chat: not a service"),
    ("timeline:\n  - at: 1s\n    cut_link: integration->solver\n",
     ":3: timeline[0].cut_link: 'integration->solver' is not a link of this scenario"),
    ("traffic:\n  - name: a\n    request: {path: \"/x/${nope.x}\"}\n",
     ":3: traffic[0].request.path: unknown template variable ${nope.x}"),
    ("services:\n  captcha: {}\ntraffic:\n  - name: a\n    request: {json: {a: \"${captcha.config.nope}\"}}\n",
     ":5: traffic[0].request.json.a: unknown template variable ${captcha.config.nope}"),
    ("target:\n  command: python app.py\n  env: {PORT: \"${target.prot}\"}\n",
     ":3: target.env.PORT: unknown template variable ${target.prot}"),
    ("services:\n  solver: {}\ntimeline:\n  - at: 1s\n    set_config: {solver: {error_text: \"${solverr.url}\"}}\n",
     ":5: timeline[0].set_config.solver.error_text: unknown template variable ${solverr.url}"),
]

TEMPLATES_THE_RUN_FILLS = """\
name: t
services: {captcha: {}, redis: {}}
links: [solver->integration]
target: {command: "python app.py --port ${target.port}", env: {R: "${redis.url}", S: "${run.dir}/${run.id}"}}
traffic:
  - name: a
    vars: {t: {captcha_ticket: {}}}
    request: {path: "/${n}/${flow}", json: {t: "${t.ticket}", u: "${captcha.config.apps}", c: "${control.url}",
              cb: "${target.callback_url_solver}", v: "${target.variant}", x: "${time_scale}"}}
"""


def test_variables_the_run_fills_in_are_accepted(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text(TEMPLATES_THE_RUN_FILLS.replace("services: {captcha: {}, redis: {}}",
                                                 "services: {captcha: {}, solver: {}, redis: {}}"))
    assert load_scenario(str(f)).name == "t"
    f.write_text("name: u\nlinks: [{name: integration->redis, upstream: '127.0.0.1:6379'}, "
                 "{name: integration->db, upstream: '127.0.0.1:5432'}]\n"
                 "target: {command: app, env: {R: '${redis.url}', P: '${redis.port}', D: '${db.host}:${db.port}'}}\n")
    assert load_scenario(str(f)).name == "u"  # an extra link's far end: host, port (redis: url)
    f.write_text(f.read_text().replace("${db.port}", "${db.url}"))
    with pytest.raises(ScenarioError, match=r"t.yaml:3: target.env.D: unknown template variable \$\{db.url\}"):
        load_scenario(str(f))


@pytest.mark.parametrize("body,expected", CASES)
def test_errors_name_file_line_and_field(tmp_path, body, expected):
    f = tmp_path / "x.yaml"
    doc = body if body.startswith(("name", "traffic: [")) else "name: x\n" + body
    f.write_text(doc)
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(f))
    msg = str(e.value)
    line_shift = 0 if body.startswith(("name", "traffic: [")) else 1
    if expected.startswith(":") and expected[1].isdigit():
        n, rest = expected[1:].split(":", 1)
        expected = f":{int(n) + line_shift}:{rest}"
    assert f"x.yaml{expected}" in msg, msg
    assert "\n" not in msg and "Traceback" not in msg


def test_hostile_yaml_is_refused_quickly(tmp_path):
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh"))
    for name, raw, want in [("bomb.yaml", bomb.encode(), "document too large"),
                            ("bin.yaml", b"name: \xff\xfe\n", "not UTF-8"),
                            ("tag.yaml", b"name: !!python/object:os.system {}\n", "unsupported YAML tag"),
                            ("deep.yaml", ("a: " + "[" * 200 + "]" * 200 + "\n").encode(), "deeper")]:
        f = tmp_path / name
        f.write_bytes(raw)
        with pytest.raises(ScenarioError, match=want):
            load_scenario(str(f))


def test_extends_merges_and_keeps_positions(tmp_path):
    (tmp_path / "_base.yaml").write_text("services:\n  captcha: {}\ntarget:\n  url: http://127.0.0.1:1\n  ready: {timeout: nope}\n")
    (tmp_path / "child.yaml").write_text("extends: _base.yaml\nname: c\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(tmp_path / "child.yaml"))
    assert "_base.yaml:5: target.ready.timeout:" in str(e.value)
    (tmp_path / "_base.yaml").write_text("services:\n  captcha: {}\ntarget:\n  url: http://127.0.0.1:1\n")
    sc = load_scenario(str(tmp_path / "child.yaml"))
    assert sc.services == {"captcha": {}} and sc.target.url == "http://127.0.0.1:1"
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\nname: l\n")
    with pytest.raises(ScenarioError, match="extends itself"):
        load_scenario(str(tmp_path / "loop.yaml"))


def test_catalogue_is_valid_and_matches_the_published_schema():
    files = discover(["scenarios"])
    assert len(files) >= 9
    validator = jsonschema_rs.validator_for(scenario_schema())
    for f in files:
        load_scenario(f)
        data, _ = load_document(f)
        data.pop("extends", None)
        errors = [e.message for e in validator.iter_errors(json.loads(json.dumps(data, default=str)))]
        assert not errors, (f, errors[:3])
    bad = yaml.safe_load(GOOD)
    bad["traffic"][0]["count"] = "many"
    assert not validator.is_valid(bad)


def test_cli_validate_and_schema(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(GOOD.replace("path: /login", "path: /login, speed: 3"))
    r = subprocess.run([sys.executable, "-m", "harness", "validate", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2  # invalid input: exit 2 (issue 17)
    assert "bad.yaml:4: traffic[0].request.speed: unknown field" in r.stderr
    assert "1 valid, 1 invalid" in r.stdout
    r = subprocess.run([sys.executable, "-m", "harness", "schema"], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["title"] == "chaos-harness scenario"
    r = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp_path / "bad.yaml")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
