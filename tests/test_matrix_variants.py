"""examples/variants.yaml: each integration's profile and catalogue folders decide what the detection
matrix runs against it — the catalogue loaded with the profile, the app's own versions of catalogue
scenarios instead of the generic ones, a scenario pinned to another profile left out — and a
malformed file is one line."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import matrix

REPO = Path(__file__).parent.parent
SCENARIO = """\
name: {name}
{head}traffic:
  - name: login
    vars:
      t: {{captcha_ticket: {{}}}}
    request: "${{profile.captcha.login}}"
expect:
  - verification_enforced: {{}}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def profile(path: Path, route: str) -> Path:
    return write(path, f"""\
        name: {path.parent.name}
        target: {{command: python app.py, integration: {path.parent.name}}}
        services:
          captcha:
            requests: {{login: {{method: POST, path: {route}, json: {{t: "${{t.ticket}}"}}}}}}
            expect: {{allowed_status: [201]}}
        """)


@pytest.fixture()
def layout(tmp_path):
    profile(tmp_path / "examples" / "one" / "profile.yaml", "/one/login")
    profile(tmp_path / "examples" / "two" / "profile.yaml", "/two/login")
    write(tmp_path / "scenarios" / "captcha" / "a.yaml", SCENARIO.format(name="a", head=""))
    write(tmp_path / "scenarios" / "captcha" / "b.yaml", SCENARIO.format(name="b", head=""))
    write(tmp_path / "scenarios" / "captcha" / "pinned.yaml",
          SCENARIO.format(name="pinned", head="profile: ../../examples/two/profile.yaml\n"))
    write(tmp_path / "examples" / "one" / "scenarios" / "b.yaml", """\
        extends: ../../../scenarios/captcha/b.yaml
        expect:
          - journal_count: {where: {kind: request, service: captcha}, min: 1}
        """)
    return write(tmp_path / "examples" / "variants.yaml", """\
        one:
          profile: one/profile.yaml
          catalogue: [captcha]
          variants: {correct: {}, buggy: {caught_by: verification_enforced, bug: "lets anyone in"}}
        two:
          profile: two/profile.yaml
          catalogue: [captcha/a.yaml, captcha/pinned.yaml]
          variants: {correct: {}}
        """)


def test_each_integration_runs_its_catalogue_through_its_profile(layout):
    integrations = matrix.load_integrations(str(layout))
    assert integrations["one"].profile == str(layout.parent / "one" / "profile.yaml")
    assert [(v.name, v.caught_by) for v in integrations["one"].variants] == [
        ("correct", None), ("buggy", "verification_enforced")]
    run = matrix.catalogue(integrations)
    assert [sc.name for sc in run["one"]] == ["a", "b"]        # pinned to two: not run against one
    assert [sc.name for sc in run["two"]] == ["a", "pinned"]
    routes = {(name, sc.name): sc.traffic[0].request.path for name, scs in run.items() for sc in scs}
    assert routes == {("one", "a"): "/one/login", ("one", "b"): "/one/login",
                      ("two", "a"): "/two/login", ("two", "pinned"): "/two/login"}
    own_b = run["one"][1]
    assert [next(iter(e)) for e in own_b.expect] == ["verification_enforced", "journal_count"]  # the app's own b
    assert own_b.expect[0]["verification_enforced"]["allowed_status"] == [201]             # the profile's default
    assert {sc.target.integration for sc in run["two"]} == {"two"}


@pytest.mark.parametrize("spec, error", [
    ("one: {catalogue: [captcha], variants: {correct: {}}}",
     "one.profile: expected the path of its target profile"),
    ("one: {profile: p.yaml, variants: {correct: {}}, colour: red}", "one: unknown key colour"),
    ("one: {profile: p.yaml, catalogue: captcha, variants: {correct: {}}}", "one.catalogue: expected a list"),
    ("one: {profile: p.yaml, variants: {buggy: {bug: x}}}", "one.variants.buggy.caught_by: a bug variant names"),
])
def test_a_malformed_variants_file_is_one_line(tmp_path, spec, error):
    path = write(tmp_path / "variants.yaml", spec + "\n")
    with pytest.raises(matrix.MatrixError) as e:
        matrix.load_integrations(str(path))
    assert str(e.value).startswith(f"{path}: {error}"), str(e.value)


def test_demo_names_a_broken_variants_file_in_one_line(tmp_path):
    write(tmp_path / "examples" / "variants.yaml", "one: {profile: gone.yaml, catalogue: [x], variants: {correct: {}}}\n")
    (tmp_path / "scenarios" / "x").mkdir(parents=True)
    r = subprocess.run([sys.executable, "-m", "harness", "demo"], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "gone.yaml" in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_profile_given_that_the_scenario_names_itself_keeps_its_target_tweaks():
    """The matrix loads every scenario with its integration's profile: where the scenario's own
    profile is that one, its target tweaks stay (as without --profile); another profile takes none."""
    from harness.scenario import load_scenario
    stalled = str(REPO / "scenarios" / "solver" / "stalled-solver.yaml")
    own = load_scenario(stalled, profile=str(REPO / "examples" / "solver_client" / "profile.yaml"))
    assert own.target.env["POLL_GIVE_UP"] == "4"
    assert own.target.env == load_scenario(stalled).target.env
    other = load_scenario(stalled, profile=str(REPO / "examples" / "twocaptcha_client" / "profile.yaml"))
    assert "POLL_GIVE_UP" not in other.target.env
