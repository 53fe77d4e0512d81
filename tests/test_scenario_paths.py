"""``extends`` deletes with ``key: null``, never leaks a replaced target's env, merges flows by name;
every path in a scenario resolves from that file's folder (the harness is run from another
folder here); ``--variant ""`` reaches the target; a target that cannot start names the whole
missing path (issue 22 item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from harness.scenario import load_scenario

REPO = Path(__file__).resolve().parent.parent

APP = """\
import os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ.get("VARIANT", "<unset>").encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=90, cwd=cwd, env=env)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_null_deletes_a_key_and_a_replaced_target_keeps_no_parent_env(tmp_path):
    write(tmp_path / "_base.yaml", """\
        services: {captcha: {}, redis: {}}
        target:
          command: python ref.py
          env: {VERIFY_TIMEOUT: "1", PORT: "${target.port}"}
          ready: {path: /health}
        """)
    child = write(tmp_path / "child.yaml", """\
        extends: _base.yaml
        name: c
        services: {redis: null}
        target:
          command: node server.js
          env: {PORT: "${target.port}"}
        """)
    sc = load_scenario(str(child))
    assert set(sc.services) == {"captcha"}
    assert sc.target.env == {"PORT": "${target.port}"}          # no VERIFY_TIMEOUT leaked in
    assert sc.target.ready.path == "/health" and sc.target.ready.status == 200  # the defaults, not the parent's
    tweak = write(tmp_path / "tweak.yaml", "extends: _base.yaml\nname: t\ntarget: {env: {EXTRA: x, VERIFY_TIMEOUT: null}}\n")
    assert load_scenario(str(tweak)).target.env == {"PORT": "${target.port}", "EXTRA": "x"}  # no command: merged


def test_flows_merge_by_name(tmp_path):
    write(tmp_path / "_base.yaml", """\
        traffic:
          - {name: a, count: 2, request: {method: POST, path: /login, json: {t: x}}}
          - {name: b, count: 1, request: {path: /b}}
        """)
    child = write(tmp_path / "child.yaml", """\
        extends: _base.yaml
        name: c
        traffic:
          - {name: a, request: {path: /signin}}
          - {name: b, drop: true}
          - {name: c, request: {path: /c}}
        """)
    flows = {f.name: f for f in load_scenario(str(child)).traffic}
    assert list(flows) == ["a", "c"]
    assert (flows["a"].count, flows["a"].request.method, flows["a"].request.path) == (2, "POST", "/signin")
    assert flows["a"].request.json_body == {"t": "x"}


def test_paths_resolve_from_the_scenario_folder(tmp_path):
    write(tmp_path / "app" / "server.py", APP)
    write(tmp_path / "app" / "bin" / "run", "#!/bin/sh\nexit 0\n")
    write(tmp_path / "suite" / "_target.yaml", """\
        target:
          cwd: ../app
          command: python server.py
          env: {PORT: "${target.port}", VARIANT: "${target.variant}"}
          ready: {path: /, timeout: 10s}
        """)
    sc_file = write(tmp_path / "suite" / "deep" / "s.yaml", """\
        name: paths
        extends: ../_target.yaml
        traffic: [{name: v, request: {path: /}}]
        expect: [{all_requests_succeeded: {flow: v}}]
        """)
    prog = write(tmp_path / "suite" / "prog.yaml", "name: p\ntarget: {command: bin/run --x, cwd: ../app}\n")
    sc = load_scenario(str(prog))
    assert sc.target.command == f"{tmp_path / 'suite' / 'bin' / 'run'} --x"
    assert sc.target.cwd == str(tmp_path / "app")
    assert load_scenario(str(sc_file)).target.cwd == str(tmp_path / "app")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = harness("run", str(sc_file), "-q", "--report-dir", str(tmp_path / "r"), "--variant", "", cwd=elsewhere)
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = next((tmp_path / "r").iterdir())
    driver = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    bodies = [e.get("response") for e in driver if e.get("kind") == "driver"]
    assert bodies == [""], bodies                     # the target saw VARIANT="" (not "correct")
    r = harness("run", str(sc_file), "-q", "--report-dir", str(tmp_path / "r2"), cwd=elsewhere)
    run_dir = next((tmp_path / "r2").iterdir())
    assert '"correct"' in (run_dir / "journal.jsonl").read_text()


def test_a_target_that_cannot_start_names_the_whole_path(tmp_path):
    write(tmp_path / "s" / "nofile.yaml", "name: a\ntarget: {command: python missing/app.py}\n")
    write(tmp_path / "s" / "nodir.yaml", "name: b\ntarget: {command: python app.py, cwd: ../no/such/folder}\n")
    write(tmp_path / "s" / "noprog.yaml", "name: c\ntarget: {command: ./bin/no-such-app --port 1}\n")
    cases = {"nofile.yaml": f"nofile.yaml:2: target.command: no such file: {tmp_path}/s/missing/app.py",
             "nodir.yaml": f"nodir.yaml:2: target.cwd: no such folder: {tmp_path}/no/such/folder",
             "noprog.yaml": f"noprog.yaml:2: target.command: command not found: {tmp_path}/s/bin/no-such-app"}
    for name, needle in cases.items():
        r = harness("run", str(tmp_path / "s" / name), "-q", "--report-dir", str(tmp_path / "r"), cwd=REPO / "docs")
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


def test_a_child_target_replaces_the_profile_and_expect_entries_merge(tmp_path):
    write(tmp_path / "_base.yaml", """\
        profile: ../examples/none.yaml
        expect:
          - verification_enforced: {}
          - journal_count: {where: {kind: request}, min: 1}
          - all_requests_succeeded: {flow: b}
        """)
    child = write(tmp_path / "child.yaml", """\
        extends: _base.yaml
        name: c
        services: {captcha: {}}
        target: {command: node server.js}
        expect:
          - verification_enforced: {allowed_status: [201]}
          - journal_count: {where: {kind: response}, min: 1}
          - all_requests_succeeded: {flow: a}
        """)
    sc = load_scenario(str(child))          # no "no such profile file": the child's target replaced it
    assert sc.profile is None and sc.target.command == "node server.js"
    assert sc.expect == [{"verification_enforced": {"allowed_status": [201]}},
                         {"journal_count": {"where": {"kind": "request"}, "min": 1}},
                         {"all_requests_succeeded": {"flow": "b"}},
                         {"journal_count": {"where": {"kind": "response"}, "min": 1}},
                         {"all_requests_succeeded": {"flow": "a"}}]
