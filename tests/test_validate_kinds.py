"""``harness validate scenarios/ examples/``: every YAML file is checked as what it is — a scenario,
a target profile, the detection matrix's variants file — and other YAML is skipped with a note,
never reported as an invalid scenario."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).parent.parent


def validate(*paths: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness", "validate", *paths], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_the_catalogue_and_the_examples_are_valid():
    r = validate("scenarios/", "examples/")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert "ok    examples/variants.yaml  (variants file, " in "\n".join(lines)
    assert "ok    examples/node_login/profile.yaml  (profile node_login)" in lines
    assert lines[-1].endswith(" valid, 0 invalid")


def test_a_variants_file_is_checked_as_one(tmp_path):
    write(tmp_path / "examples" / "app" / "profile.yaml", """\
        name: app
        target: {url: "http://127.0.0.1:1"}
        """)
    (tmp_path / "scenarios" / "captcha").mkdir(parents=True)
    variants = write(tmp_path / "examples" / "variants.yaml", """\
        app:
          profile: app/profile.yaml
          catalogue: [captcha, chat]
          variants:
            correct: {}
            buggy: {caught_by: no_such_invariant, bug: "x"}
        gone:
          profile: gone/profile.yaml
          catalogue: [captcha]
          variants: {correct: {}}
        """)
    write(tmp_path / "examples" / "notes.yaml", "owner: me\nname: not a scenario\n")
    r = validate("examples", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.splitlines() == [
        f"{variants.relative_to(tmp_path)}: app.catalogue: no such folder or file {tmp_path / 'scenarios' / 'chat'}",
        f"{variants.relative_to(tmp_path)}: app.variants.buggy.caught_by: no_such_invariant is not a registered "
        "invariant (harness list --invariants)",
        f"{variants.relative_to(tmp_path)}: gone.profile: no such file {tmp_path / 'examples' / 'gone' / 'profile.yaml'}"]
    assert "ok    examples/app/profile.yaml  (profile app)" in r.stdout
    assert "skip  examples/notes.yaml  (not a scenario, target profile or variants file)" in r.stdout
    assert r.stdout.splitlines()[-1] == "1 valid, 1 invalid, 1 skipped"


def test_a_broken_profile_or_variants_file_is_one_line(tmp_path):
    write(tmp_path / "p" / "profile.yaml", """\
        name: app
        target: {url: "http://127.0.0.1:1"}
        services: {nosuch: {}}
        """)
    write(tmp_path / "p" / "variants.yaml", "app: {variants: {bad: {}}, profile: profile.yaml}\n")
    r = validate("p", cwd=tmp_path)
    assert r.returncode == 2
    profile_line, variants_line = sorted(r.stderr.splitlines())
    assert profile_line.startswith("p/profile.yaml:3: services.nosuch: unknown service (known: captcha, ")
    assert variants_line == "p/variants.yaml: app.variants.bad.caught_by: a bug variant names the invariant that catches it"
    assert "Traceback" not in r.stderr
