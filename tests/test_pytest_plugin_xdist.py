"""xdist safety: three workers run the same generated suite at the same moment (``--dist each``, a
file barrier before every fault) — same test names, same link names, same scenario name — and
nothing they inject or record collides: each worker sees exactly its own faults, and ports, proxy
names, journals and report folders are all distinct."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import requests

WORKERS = 3

SUITE = textwrap.dedent('''
    import json, os, time
    from pathlib import Path

    import pytest
    import requests

    OUT = Path(os.environ["PLUGIN_XDIST_OUT"])
    WORKERS = int(os.environ["PLUGIN_XDIST_WORKERS"])
    KEY = "c0ffee00c0ffee00c0ffee00c0ffee00"
    ME = os.environ.get("PYTEST_XDIST_WORKER", "main")
    N = int(ME[2:]) + 1 if ME.startswith("gw") else 1  # each worker injects a different number of faults


    def barrier(name):
        (OUT / f"{name}.{ME}.arrived").touch()
        deadline = time.monotonic() + 60
        while len(list(OUT.glob(f"{name}.*.arrived"))) < WORKERS:
            assert time.monotonic() < deadline, f"barrier {name}: the other workers never arrived"
            time.sleep(0.005)


    def record(name, **facts):
        (OUT / f"{name}.{ME}.json").write_text(json.dumps(facts))


    def balance(url):
        return requests.get(url + "/res.php", params={"key": KEY, "action": "getbalance"}, timeout=10)


    def test_mock_faults(harness, solver_mock):
        solver_mock.add_rule(status=503, body=f"busy-{ME}", action="res.php", times=N)
        barrier("mock")
        answers = [(r.status_code, r.text) for r in (balance(solver_mock.url) for _ in range(N + 2))]
        assert answers[:N] == [(503, f"busy-{ME}")] * N and all(s == 200 for s, _ in answers[N:])
        assert len(solver_mock.requests("res.php")) == N + 2  # this worker's journal: only its requests
        record("mock", port=solver_mock.port, control=harness.control_url,
               journal=harness.wh.host.journal.path)


    def test_link_faults(solver_mock, link):
        ln = link("integration->solver")
        ln.add_toxic("latency", latency=300 * N)
        barrier("link")
        started = time.monotonic()
        assert balance(ln.url).status_code == 200
        assert time.monotonic() - started >= 0.3 * N - 0.05
        if ME == "gw0":
            ln.down()
        barrier("cut")  # gw0's link is down now; everybody else's must still work
        if ME == "gw0":
            with pytest.raises(requests.ConnectionError):
                balance(ln.url)
        else:
            assert balance(ln.url).status_code == 200
        barrier("checked")
        record("link", proxy=ln.proxy, port=ln.port, toxiproxy=ln._owner.server.url)


    def test_same_scenario_everywhere(run_scenario):
        barrier("scenario")
        outcome = run_scenario({
            "name": "parallel-probe", "services": {"solver": {}},
            "target": {"url": "${solver.url}", "ready": {"path": f"/res.php?key={KEY}&action=getbalance"}},
            "traffic": [{"name": "probe", "count": N + 2, "start": "0.2s",
                         "request": {"path": "/res.php", "query": {"key": KEY, "action": "getbalance"}}}],
            "timeline": [{"at": "0s", "add_rules": [{"match": {"service": "solver", "action": "res.php"},
                                                     "effect": {"status": 503}, "schedule": {"times": N}}]}],
            "expect": [{"journal_count": {"where": {"kind": "response", "status": 503}, "min": N, "max": N}}],
        })
        assert outcome.ok, outcome.explain()
        record("scenario", run_dir=outcome.run_dir, journal=outcome.journal)
''')


def test_workers_inject_faults_at_once_without_colliding(tmp_path: Path):
    suite, out = tmp_path / "suite", tmp_path / "out"
    suite.mkdir()
    out.mkdir()
    (suite / "test_parallel.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    env.update(PLUGIN_XDIST_OUT=str(out), PLUGIN_XDIST_WORKERS=str(WORKERS))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(WORKERS),
                           "-p", "no:schemathesis", "-p", "no:locust", "-p", "no:hypothesispytest",
                           "--dist", "each", "-o", "addopts=", "--basetemp", str(tmp_path / "basetemp"),
                           str(suite)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{3 * WORKERS} passed" in proc.stdout

    def facts(name: str) -> list[dict]:
        found = [json.loads(p.read_text()) for p in sorted(out.glob(f"{name}.gw*.json"))]
        assert len(found) == WORKERS, f"{name}: {len(found)} workers recorded"
        return found

    for name, keys in {"mock": ("port", "control", "journal"), "link": ("proxy", "port", "toxiproxy"),
                       "scenario": ("run_dir", "journal")}.items():
        rows = facts(name)
        for key in keys:
            values = [row[key] for row in rows]
            assert len(set(values)) == WORKERS, f"{name}.{key} collided between workers: {values}"
    for row in facts("mock"):
        assert Path(row["journal"]).is_file()
    for row in facts("scenario"):
        assert Path(row["run_dir"], "report.html").is_file()
    for row in facts("link"):  # every worker stopped its Toxiproxy server
        try:
            requests.get(row["toxiproxy"] + "/version", timeout=2)
            raise AssertionError(f"{row['toxiproxy']} still answers")
        except requests.ConnectionError:
            pass
