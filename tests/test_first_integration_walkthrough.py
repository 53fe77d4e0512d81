"""docs/profiles.md "Your first integration in 10 minutes", followed literally: its code blocks are
the steps — ``file=NAME`` blocks are written to an empty folder, ``sh`` blocks run there (``harness``
is this checkout's CLI; ``# exit N`` is the exit code the doc promises, default 0), and a ``text``
block after a command lists what its output must show (``…`` stands for anything). When the doc
drifts from the harness, this fails."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parent.parent
DOC = REPO / "docs" / "profiles.md"
SECTION = "## Your first integration in 10 minutes"
BLOCK = re.compile(r"^```(\S*)([^\n]*)\n(.*?)^```$", re.M | re.S)


def steps() -> list[tuple[str, str, str]]:
    """(kind, argument, body) per code block of the section, in order: ("file", name, text),
    ("sh", "", commands), ("text", "", expected output)."""
    text = DOC.read_text()
    assert SECTION in text, f"{DOC} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    out = []
    for lang, info, body in BLOCK.findall(section):
        name = re.search(r"\bfile=(\S+)", info)
        out.append(("file", name.group(1), body) if name else (lang, "", body))
    return out


def run(line: str, cwd: Path) -> tuple[subprocess.CompletedProcess, int]:
    command, _, comment = line.partition("#")
    want = re.search(r"exit (\d+)", comment)
    argv = shlex.split(command)
    assert argv[0] == "harness", f"a step runs something else than harness: {line}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "harness", *argv[1:]], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=300)
    return r, int(want.group(1)) if want else 0


def test_the_walkthrough_as_written(tmp_path):
    done = steps()
    kinds = [k for k, _, _ in done]
    assert kinds.count("file") >= 2 and kinds.count("sh") >= 3, kinds
    last = None
    for kind, arg, body in done:
        if kind == "file":
            (tmp_path / arg).write_text(body)
        elif kind == "sh":
            for line in [ln for ln in body.splitlines() if ln.strip() and not ln.startswith("#")]:
                last, want = run(line, tmp_path)
                assert last.returncode == want, f"$ {line}\n{last.stdout}\n{last.stderr}"
                if "init --profile" in line:
                    starter = (tmp_path / shlex.split(line.partition("#")[0])[-1]).read_text()
                    assert "${profile.captcha.login}" in starter  # names the role the doc fills in
        elif kind == "text":
            assert last is not None, "an output block before any command"
            for expected in [ln.strip() for ln in body.splitlines() if ln.strip()]:
                pieces = [p.strip() for p in expected.split("…") if p.strip()]
                shown = last.stdout + last.stderr  # the progress lines go to stderr
                assert all(p in shown for p in pieces), f"{expected!r} not in:\n{shown}"
    reports = list((tmp_path / "reports").iterdir())
    assert reports, "the runs wrote no report"
