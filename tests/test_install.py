"""Installable anywhere: the wheel, installed into a fresh venv outside the checkout, gives a working
``harness`` — the catalogue and the reference integrations its targets start ship in the wheel, the
Toxiproxy hint does not point into site-packages or at `make setup`, and ``pytest -n 2`` works with
the plugin (pytest-xdist is a dependency).

To stay fast and offline the wheel is built without build isolation (hatchling is a dev dependency)
and installed with ``--no-deps``; the fresh venv sees this venv's packages through a ``.pth`` file
(a path line only: this venv's editable install of the checkout is not picked up)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def sh(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("hatchling", reason="hatchling (a dev dependency) builds the wheel offline")
    base = tmp_path_factory.mktemp("install")
    dist = base / "dist"
    r = sh([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
            str(ROOT)], cwd=base, timeout=300)
    assert r.returncode == 0, r.stderr
    wheel, = dist.glob("chaos_harness-*.whl")
    venv = base / "venv"
    assert sh([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=base).returncode == 0
    python = venv / "bin" / "python"
    r = sh([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)], cwd=base)
    assert r.returncode == 0, r.stderr
    site = Path(sh([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=base).stdout.strip())
    (site / "zz_dev_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = venv / "bin" / "pytest"  # the console script pip would install with pytest (a dependency)
    script.write_text(f"#!{python}\nimport sys\nfrom pytest import console_main\nsys.exit(console_main())\n")
    script.chmod(0o755)
    work = base / "project"  # the user's own project: no scenarios/, no examples/, no checkout
    work.mkdir()
    return {"wheel": wheel, "venv": venv, "python": python, "harness": venv / "bin" / "harness", "site": site,
            "work": work}


def test_the_wheel_carries_the_catalogue_and_needs_pytest_xdist(installed):
    with zipfile.ZipFile(installed["wheel"]) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "harness/bundled/scenarios/_targets/captcha_backend.yaml" in names
    assert "harness/bundled/scenarios/captcha/internal-error-fails-open.yaml" in names
    assert "harness/bundled/examples/captcha_backend/app.py" in names
    assert "harness/bundled/examples/variants.yaml" in names
    requires = [ln.split(":", 1)[1].strip() for ln in meta.splitlines() if ln.startswith("Requires-Dist:")]
    assert any(r.startswith("pytest-xdist") and "extra ==" not in r for r in requires), requires
    assert "Provides-Extra: pytest" in meta and "Provides-Extra: examples" in meta
    assert any(r.startswith("2captcha-python") and "extra == 'examples'" in r for r in requires), requires


def test_installed_harness_lists_validates_and_runs_the_catalogue(installed):
    work, harness = installed["work"], str(installed["harness"])
    where = sh([str(installed["python"]), "-c", "import harness; print(harness.__file__)"], cwd=work).stdout
    assert where.startswith(str(installed["site"])), where  # the installed copy, not the checkout

    listed = sh([harness, "list"], cwd=work)
    assert listed.returncode == 0, listed.stderr
    last = listed.stdout.strip().splitlines()[-1]
    assert last.endswith(str(installed["site"] / "harness" / "bundled" / "scenarios")), last
    assert int(last.split()[0]) >= 20 and "captcha-internal-error-fails-open" in listed.stdout

    valid = sh([harness, "validate", "scenarios"], cwd=work)
    assert valid.returncode == 0, valid.stderr
    assert valid.stdout.strip().splitlines()[-1].endswith(" valid, 0 invalid")

    run = sh([harness, "run", "scenarios/captcha/internal-error-fails-open.yaml", "--report-dir", "reports", "-q"],
             cwd=work)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("PASS: 1/1 scenarios passed")
    report, = (work / "reports").glob("*-captcha-internal-error-fails-open-*/report.html")
    assert "Traceback" not in (report.parent / "target.log").read_text()


def test_installed_harness_says_how_to_get_toxiproxy(installed, tmp_path):
    env = {"PATH": str(installed["venv"] / "bin") + os.pathsep + "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path),
           "TOXIPROXY_URL": "", "TOXIPROXY_SERVER": ""}
    r = sh([str(installed["harness"]), "serve", "--services", "solver", "--proxies"], cwd=installed["work"], env=env,
           timeout=30)
    assert r.returncode == 2 and r.stdout == ""
    line, = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "harness toxiproxy install" in line and str(tmp_path / "chaos-harness" / "bin") in line
    assert "make setup" not in line and "site-packages" not in line
    cached = tmp_path / "chaos-harness" / "bin" / "toxiproxy-server"  # what `harness toxiproxy install` leaves
    cached.parent.mkdir(parents=True)
    cached.symlink_to(ROOT / ".tools" / "bin" / "toxiproxy-server")
    found = sh([str(installed["harness"]), "toxiproxy"], cwd=installed["work"], env=env)
    assert found.returncode == 0 and found.stdout.strip() == str(cached)


TINY_APP = """\
import json, os, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOLVER = os.environ["SOLVER_URL"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            return self.answer(200, {"ok": True})
        try:  # the account balance, with our own timeout; 503 when the solver fails us
            with urllib.request.urlopen(SOLVER + "/res.php?key=c0ffee00c0ffee00c0ffee00c0ffee00&action=getbalance",
                                        timeout=1.5) as r:
                return self.answer(200, {"balance": r.read().decode()})
        except Exception as e:
            return self.answer(503, {"error": type(e).__name__})

    def answer(self, status, doc):
        raw = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

OWN_TEST = """\
import os, requests

def test_solver_fault(solver_mock):
    with solver_mock.fault({"status": 503}, action="res.php"):
        assert requests.get(solver_mock.url + "/res.php", timeout=5).status_code == 503
    assert os.environ["PYTEST_XDIST_WORKER"].startswith("gw")
"""


def test_init_a_project_then_run_it_and_pytest_n_2(installed):
    project = installed["work"] / "shop"
    project.mkdir()
    (project / "app.py").write_text(TINY_APP)
    harness = str(installed["harness"])
    init = sh([harness, "init", "--service", "solver"], cwd=project)
    assert init.returncode == 0, init.stderr
    written = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file() and p.name != "app.py")
    assert written == ["conftest.py", "scenarios/_targets/app.yaml", "scenarios/solver-baseline.yaml",
                       "scenarios/solver-outage.yaml", "scenarios/solver-slow.yaml"]
    again = sh([harness, "init", "--service", "solver"], cwd=project)
    assert again.returncode == 0 and again.stdout.count("kept ") == 5  # nothing overwritten without --force

    assert sh([harness, "list"], cwd=project).stdout.strip().endswith("3 scenarios in scenarios")
    run = sh([harness, "run", "scenarios", "--report-dir", "reports", "-q"], cwd=project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("PASS: 3/3 scenarios passed")

    (project / "test_own.py").write_text(OWN_TEST)
    r = sh([str(installed["python"]), "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider"], cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 passed" in r.stdout  # the three scenarios (collected through the starter's conftest) + own test


def ci_files() -> tuple[dict, dict]:
    """The GitHub Actions and GitLab CI files of docs/ci.md (its yaml blocks, in that order)."""
    text = (ROOT / "docs" / "ci.md").read_text()
    github, gitlab = (yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S))
    return github, gitlab


def test_the_ci_workflows_in_the_docs_run(installed):
    github, gitlab = ci_files()
    steps = github["jobs"]["chaos"]["steps"]
    commands = [s["run"] for s in steps if "run" in s and not s["name"].startswith("install")]
    assert [s["run"] for s in steps if "run" in s and s["name"].startswith("install")] == [
        'pip install "chaos-harness[pytest]"', "harness toxiproxy install"]
    assert gitlab["chaos"]["script"] == commands  # the same test steps in both
    assert gitlab["chaos"]["artifacts"]["reports"]["junit"] == "reports/junit.xml"

    project = installed["work"] / "ci"
    project.mkdir()
    (project / "app.py").write_text(TINY_APP)
    assert sh([str(installed["harness"]), "init", "--service", "solver"], cwd=project).returncode == 0
    env = {"PATH": f"{installed['venv'] / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for command in commands:
        r = sh(["bash", "-c", command], cwd=project, env=env, timeout=240)
        assert r.returncode == 0, f"{command}: {r.stdout}{r.stderr}"
    assert (project / "reports" / "junit.xml").is_file()
    assert len(list((project / "reports").glob("*-suite/report.html"))) == 1
