"""``target.build`` (issue 22, second set, point 6): a compiled target declares its build step; it
runs once per content (a cache keyed by the command and the input files), a changed source builds
again, and a failing build or a missing build program is exit 2 with one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.journal import read_events
from harness.scenario import ScenarioError, load_scenario

REPO = Path(__file__).resolve().parent.parent
needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")

APP = """\
    package main

    import (
    \t"net/http"
    \t"os"
    )

    func main() {
    \thttp.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("%s")) })
    \thttp.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
    }
"""

PROFILE = """\
    target:
      build: go build -o ${build.dir}/app .
      command: ${build.dir}/app
      env: {PORT: "${target.port}"}
      ready: {path: /health}
"""

SCENARIO = """\
    name: built-target
    profile: app/profile.yaml
    traffic:
      - {name: health, count: 2, request: {path: /health}}
    expect:
      - all_requests_succeeded: {}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def harness(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_BUILD_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def built_event(run_dir: Path) -> dict:
    events = [e for e in read_events(str(run_dir / "journal.jsonl")) if e.get("step") == "target_built"]
    assert len(events) == 1, events
    return events[0]


def run_dirs(reports: Path) -> list[Path]:
    return sorted((p for p in reports.iterdir() if p.is_dir() and (p / "journal.jsonl").exists()),
                  key=lambda p: p.stat().st_mtime)


@needs_go
def test_a_go_target_is_built_once_per_content(tmp_path):
    cache = tmp_path / "cache"
    write(tmp_path / "app" / "go.mod", "module example.com/app\n\ngo 1.22\n")
    write(tmp_path / "app" / "main.go", APP % "ok")
    write(tmp_path / "app" / "profile.yaml", PROFILE)
    write(tmp_path / "s.yaml", SCENARIO)

    r = harness("run", "s.yaml", "--report-dir", "reports", cwd=tmp_path, cache=cache)
    assert r.returncode == 0, r.stdout + r.stderr
    first = built_event(run_dirs(tmp_path / "reports")[-1])
    assert first["cached"] is False and first["seconds"] > 0
    out = Path(first["build_dir"])
    assert out.parent == cache and (out / "app").is_file()
    log_mtime = (out / "build.log").stat().st_mtime_ns
    made = json.loads((out / "build.json").read_text())["built"]

    r = harness("run", "s.yaml", "--report-dir", "reports", cwd=tmp_path, cache=cache)
    assert r.returncode == 0, r.stdout + r.stderr
    second = built_event(run_dirs(tmp_path / "reports")[-1])
    assert second["cached"] is True and second["build_dir"] == first["build_dir"]
    assert (out / "build.log").stat().st_mtime_ns == log_mtime  # the build did not run again
    assert json.loads((out / "build.json").read_text())["built"] == made

    write(tmp_path / "app" / "main.go", APP % "changed")  # another content: another build
    r = harness("run", "s.yaml", "--report-dir", "reports", cwd=tmp_path, cache=cache)
    assert r.returncode == 0, r.stdout + r.stderr
    third = built_event(run_dirs(tmp_path / "reports")[-1])
    assert third["cached"] is False and third["build_dir"] != first["build_dir"]
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == sorted([out.name, Path(third["build_dir"]).name])


@needs_go
def test_a_failing_build_is_one_line_naming_profile_command_and_error(tmp_path):
    cache = tmp_path / "cache"
    write(tmp_path / "app" / "go.mod", "module example.com/app\n\ngo 1.22\n")
    write(tmp_path / "app" / "main.go", "package main\n\nfunc main() { undefinedThing() }\n")
    write(tmp_path / "app" / "profile.yaml", PROFILE)
    write(tmp_path / "s.yaml", SCENARIO)
    r = harness("run", "s.yaml", "--report-dir", "reports", cwd=tmp_path, cache=cache)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if "target.build" in ln]
    assert lines, r.stdout + r.stderr
    line = lines[0]
    assert "app/profile.yaml: target.build `go build -o ${build.dir}/app .` failed (exit 1):" in line, line
    assert "undefined: undefinedThing" in line, line
    assert "Traceback" not in r.stdout + r.stderr
    failed_log = line.rsplit("(log: ", 1)[1].rstrip(")")
    assert "undefinedThing" in Path(failed_log).read_text()
    assert not [p for p in cache.iterdir() if p.is_dir()]  # nothing half-built is cached


def test_a_missing_build_program_is_one_line(tmp_path):
    write(tmp_path / "app" / "profile.yaml", PROFILE.replace("go build", "no-such-builder-42 build"))
    write(tmp_path / "s.yaml", SCENARIO)
    r = harness("run", "s.yaml", cwd=tmp_path, cache=tmp_path / "cache")
    assert r.returncode == 2
    assert r.stderr.strip() == "harness run: app/profile.yaml:2: target.build: command not found: no-such-builder-42", \
        r.stderr


def test_a_missing_build_program_at_run_time_is_one_line(tmp_path, monkeypatch):
    """Without the CLI's preflight (pytest plugin, matrix) the run itself says it in one line."""
    import asyncio

    from harness.run.runner import Runner, RunOptions
    monkeypatch.setenv("HARNESS_BUILD_CACHE", str(tmp_path / "cache"))
    write(tmp_path / "app" / "profile.yaml", PROFILE.replace("go build", "no-such-builder-42 build"))
    sc = load_scenario(str(write(tmp_path / "s.yaml", SCENARIO)))
    result = asyncio.run(Runner(sc, RunOptions(report_dir=str(tmp_path / "reports"))).run())
    assert result.error is not None and "\n" not in result.error
    assert result.error.endswith("app/profile.yaml: target.build `no-such-builder-42 build -o ${build.dir}/app .`: "
                                 "command not found: no-such-builder-42"), result.error


def test_build_needs_a_command_and_a_command_of_its_own(tmp_path):
    write(tmp_path / "s.yaml", "name: s\ntarget:\n  url: http://127.0.0.1:1\n  build: make\n")
    with pytest.raises(ScenarioError, match="s.yaml:3: target: .*build: needs a command"):
        load_scenario(str(tmp_path / "s.yaml"))
    write(tmp_path / "t.yaml", "name: t\ntarget:\n  command: app\n  build: {command: ''}\n")
    with pytest.raises(ScenarioError, match=r"t.yaml:4: target.build.command: .*must not be empty"):
        load_scenario(str(tmp_path / "t.yaml"))
    write(tmp_path / "u.yaml", "name: u\ntarget:\n  command: ${build.dir}/app\n")  # no build: no build.dir
    with pytest.raises(ScenarioError, match=r"u.yaml:3: target.command: unknown template variable \$\{build.dir\}"):
        load_scenario(str(tmp_path / "u.yaml"))
