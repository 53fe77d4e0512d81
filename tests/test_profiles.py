"""Target profiles (issue 22 item 1): validated with file:line errors; a profile replaces the
scenario's target and fills ``${profile.<service>.<role>}``; catalogue scenarios run unchanged with
``--profile examples/<app>/profile.yaml`` (also from another folder, and through pytest) and give the
verdicts they give today; the solver's site endpoint is configurable; ``harness init --profile``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from harness.host import HostThread
from harness.journal import read_events
from harness.scenario import ScenarioError, load_scenario
from harness.scenario.profile import load_profile

REPO = Path(__file__).resolve().parent.parent
PROFILES = {app: REPO / "examples" / app / "profile.yaml" for app in ("captcha_backend", "solver_client", "chat_backend")}


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_reference_profiles_are_valid():
    for app, path in PROFILES.items():
        profile, _, _ = load_profile(str(path))
        assert profile.target.integration == app and profile.target.cwd == str(REPO)


@pytest.mark.parametrize("body,needle", [
    ("target: {command: app, colour: red}\n", "p.yaml:1: target.colour: unknown field"),
    ("target: {command: app}\nservices:\n  nosuch: {}\n", "p.yaml:3: services.nosuch: unknown service"),
    ("target: {command: app}\nservices:\n  captcha:\n    calls: [Describe]\n",
     "p.yaml:4: services.captcha.calls[0]: 'Describe' is not an action of captcha"),
    ("target: {command: app}\nservices:\n  captcha:\n    requests: {login: {method: FETCH}}\n",
     "p.yaml:4: services.captcha.requests.login.method:"),
    ("services: {}\n", "p.yaml:1: target: required field missing"),
    ("target: {command: app}\nservices:\n  captcha:\n    config: {nope: 1}\n    requests: {login: {path: /}}\n",
     "p.yaml:4: services.captcha.nope: unknown config key of captcha"),
])
def test_profile_errors_name_file_line_and_field(tmp_path, body, needle):
    write(tmp_path / "p.yaml", body)
    r = harness("validate", str(REPO / "scenarios/captcha/healthy-enforces.yaml"), "--profile", "p.yaml", cwd=tmp_path)
    assert r.returncode == 2 and needle in r.stderr, r.stderr


def test_a_missing_profile_is_named(tmp_path):
    write(tmp_path / "s.yaml", "name: s\nprofile: nope/p.yaml\n")
    r = harness("validate", "s.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "s.yaml:2: profile: no such profile file nope/p.yaml" in r.stderr, r.stderr
    r = harness("run", str(REPO / "scenarios/captcha/healthy-enforces.yaml"), "--profile", "gone.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "--profile: no such profile file gone.yaml" in r.stderr, r.stderr


def test_profile_replaces_the_target_and_fills_roles_and_defaults(tmp_path):
    profile = write(tmp_path / "app" / "profile.yaml", """\
        target:
          command: node server.js
          env: {LISTEN: "${target.port}", VERIFY_URL: "${captcha.url}"}
          ready: {path: /up, status: 204}
        services:
          captcha:
            config: {ticket_lifetime_s: 60}
            requests:
              login: {method: PUT, path: /auth/signin, form: {captcha_ticket: "${t.ticket}", rand: "${t.randstr}"}}
            expect: {allowed_status: [302], denied_status: [401]}
        """)
    sc = load_scenario(str(REPO / "scenarios/captcha/healthy-enforces.yaml"), profile=str(profile))
    assert sc.target.command == "node server.js" and sc.target.cwd == str(tmp_path / "app")
    assert "VERIFY_TIMEOUT" not in sc.target.env and sc.target.ready.status == 204
    assert sc.services["captcha"] == {"ticket_lifetime_s": 60}
    assert {(f.request.method, f.request.path) for f in sc.traffic} == {("PUT", "/auth/signin")}
    assert sc.traffic[0].request.form == {"captcha_ticket": "${t.ticket}", "rand": "${t.randstr}"}
    enforced = next(e["verification_enforced"] for e in sc.expect if "verification_enforced" in e)
    assert enforced == {"allowed_status": [302], "denied_status": [401]}
    assert sc.profile == str(profile)


def test_profile_references_need_a_profile_that_gives_them(tmp_path):
    s = write(tmp_path / "s.yaml", """\
        name: s
        traffic:
          - name: a
            request: "${profile.captcha.login}"
        """)
    with pytest.raises(ScenarioError, match=r"s.yaml:4: traffic\[0\].request: \$\{profile.captcha.login\} needs a "
                                            r"target profile"):
        load_scenario(str(s))
    with pytest.raises(ScenarioError, match=r"s.yaml:4: .*gives no captcha.login \(it gives: solver.submit"):
        load_scenario(str(s), profile=str(PROFILES["solver_client"]))


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


CASES = [  # (profile, scenario, variant, expected exit code, invariant that must fail)
    ("captcha_backend", "scenarios/captcha/healthy-enforces.yaml", None, 0, None),
    ("captcha_backend", "scenarios/captcha/internal-error-fails-open.yaml", "fail_closed", 1, "verification_fail_open"),
    ("solver_client", "scenarios/solver/pingbacks-duplicated.yaml", None, 0, None),
    ("chat_backend", "scenarios/chat/forged-webhooks-refused.yaml", "no_sign_check", 1, "forged_webhook_refused"),
]


@pytest.mark.parametrize("app,scenario,variant,code,caught", CASES)
def test_catalogue_runs_unchanged_with_a_reference_profile(tmp_path, app, scenario, variant, code, caught):
    """The same verdict with ``--profile`` as without, run from another folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    extra = ["--variant", variant] if variant else []
    verdicts = []
    for with_profile in (False, True):
        reports = tmp_path / f"r{int(with_profile)}"
        args = ["run", str(REPO / scenario), "-q", "--report-dir", str(reports), *extra]
        if with_profile:
            args += ["--profile", os.path.relpath(PROFILES[app], elsewhere)]
        r = harness(*args, cwd=elsewhere)
        assert r.returncode == code, r.stdout + r.stderr
        s = summary(next(p for p in reports.iterdir() if p.is_dir()))
        failed = sorted(i["name"] for i in s["invariants"] if not i["ok"])
        verdicts.append((s["state"] if "state" in s else s.get("verdict"), failed))
        if caught:
            assert caught in failed
    assert verdicts[0] == verdicts[1]


def test_pytest_option_harness_profile(tmp_path):
    suite = write(tmp_path / "suite" / "login.yaml", """\
        name: profile-login
        services: {captcha: {}}
        traffic:
          - name: good
            count: 2
            vars: {t: {captcha_ticket: {}}}
            request: "${profile.captcha.login}"
        expect:
          - verification_enforced: {}
          - all_requests_succeeded: {flow: good}
        """).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-o", "addopts=",
            "--basetemp", str(tmp_path / "bt"), "--scenarios", str(suite)]
    ok = subprocess.run(base + ["--harness-profile", os.path.relpath(PROFILES["captcha_backend"], tmp_path)],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert ok.returncode == 0 and "1 passed" in ok.stdout, ok.stdout[-3000:] + ok.stderr[-2000:]
    bad = subprocess.run(base, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert bad.returncode != 0 and "needs a target profile" in bad.stdout, bad.stdout[-3000:]


def test_a_profile_target_that_cannot_start_names_the_profile_line(tmp_path):
    write(tmp_path / "p.yaml", "target:\n  command: python nowhere.py\nservices:\n  captcha:\n"
                               "    requests: {login: {path: /}}\n")
    r = harness("run", str(REPO / "scenarios/captcha/healthy-enforces.yaml"), "--profile", "p.yaml", "-q",
                "--report-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"p.yaml:2: target.command: no such file: {tmp_path}/nowhere.py" in r.stderr, r.stderr


def test_load_takes_a_profile(tmp_path):
    write(tmp_path / "p.yaml", "target: {command: app}\nservices: {nosuch: {}}\n")
    r = harness("load", str(REPO / "scenarios/captcha/healthy-enforces.yaml"), "--profile", "p.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "p.yaml:2: services.nosuch: unknown service" in r.stderr, r.stderr


def test_site_endpoint_method_path_and_field_names_are_configurable(tmp_path):
    fast = {"solve_distribution": "fixed", "solve_min_s": 0.01, "solve_max_s": 0.01, "site_path": "/api/use",
            "site_method": "PUT", "site_token_field": "solution", "site_task_field": "task_id"}
    with HostThread(services={"solver": fast}, run_dir=str(tmp_path), seed=3) as ht:
        base = ht.host.urls["solver"]
        key = ht.host.services["solver"].config_dict()["keys"]
        tid = requests.get(base + "/in.php", params={"key": next(iter(key)), "method": "userrecaptcha", "json": 1,
                                                     "googlekey": "6Le-x", "pageurl": "https://a.example"},
                           timeout=5).json()["request"]
        for _ in range(100):
            r = requests.get(base + "/res.php", params={"key": next(iter(key)), "action": "get", "id": tid,
                                                        "json": 1}, timeout=5).json()
            if r["status"] == 1:
                break
        token = r["request"]
        assert requests.post(base + "/api/use", json={"solution": token}, timeout=5).status_code == 405
        missing = requests.put(base + "/api/use", json={"token": token}, timeout=5)
        assert (missing.status_code, missing.json()["error"]) == (400, "missing token")
        used = requests.put(base + "/api/use", data={"solution": token, "task_id": tid}, timeout=5)
        assert (used.status_code, used.json()) == (200, {"ok": True, "task": tid})
        assert requests.post(base + "/site/submit", json={"token": token}, timeout=5).status_code == 404
        uses = [e for e in read_events(ht.host.journal.read_since(0))
                if e.kind == "request" and e.action == "site.submit"]
        assert [u["params"].get("token") for u in uses][-2:] == [None, token]  # read as `token`


def test_init_writes_a_valid_starter(tmp_path):
    r = harness("init", "--profile", "my.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "my.yaml").read_text()
    assert "${profile.captcha.login}" in text and "${profile.solver.submit}" in text
    profile, _, _ = load_profile(str(tmp_path / "my.yaml"))
    assert profile.target.command == "python app.py" and set(profile.services) >= {"captcha", "solver", "chat"}
    again = harness("init", "--profile", "my.yaml", cwd=tmp_path)
    assert again.returncode == 2 and "my.yaml: exists" in again.stderr
    assert harness("init", "--profile", cwd=tmp_path).returncode == 0 and (tmp_path / "profile.yaml").exists()


FOREIGN = REPO / "tests" / "foreign_login" / "profile.yaml"


@pytest.mark.parametrize("variant,code", [(None, 0), ("fail_closed", 1)])
def test_catalogue_runs_unchanged_against_a_foreign_integration(tmp_path, variant, code):
    """A login backend of another shape (PUT /auth/signin, a form, 201 / 401, GET /up 204, its own env
    names) passes the generic captcha scenarios through its profile, and its bug is caught by name."""
    scenarios = [str(REPO / "scenarios/captcha" / f) for f in
                 ("healthy-enforces.yaml", "internal-error-fails-open.yaml", "dr-tickets.yaml")]
    args = ["run", *scenarios, "-q", "--report-dir", str(tmp_path / "r"), "--profile", str(FOREIGN)]
    r = harness(*args, *(["--variant", variant] if variant else []), cwd=tmp_path)
    assert r.returncode == code, r.stdout + r.stderr
    suite = next((tmp_path / "r").iterdir())
    failed = {i["name"] for d in suite.iterdir() if d.is_dir() for i in summary(d)["invariants"] if not i["ok"]}
    assert failed == (set() if variant is None else {"verification_fail_open"})


def test_the_catalogue_names_no_route_of_a_reference_app():
    """``scenarios/`` drives the integration only through profile roles (or the mocks' own URLs),
    and checks nothing an app answers on a route of its own: those checks live in examples/<app>/."""
    from harness.scenario import discover
    from harness.scenario.loader import load_document
    for f in discover([str(REPO / "scenarios")]):
        data, _ = load_document(f)
        for flow in data.get("traffic") or []:
            request = flow["request"]
            assert isinstance(request, str) and request.startswith("${profile.") or \
                isinstance(request, dict) and str(request.get("url", "")).startswith("${"), (f, flow["name"])
        for item in data.get("expect") or []:
            where = (item.get("journal_count") or {}).get("where") or {}
            assert where.get("kind") != "driver", (f, item)


def test_reference_checks_extend_the_generic_scenarios():
    from harness.matrix import catalogue
    own = sorted(p for app in ("chat_backend", "solver_client") for p in (REPO / "examples" / app).glob("scenarios/*.yaml"))
    assert {p.parent.parent.name for p in own} == {"chat_backend", "solver_client"}
    matrix = catalogue()
    for path in own:
        sc = load_scenario(str(path))
        generic = load_scenario(str(REPO / "scenarios" / ("chat" if "chat" in path.parent.parent.name else "solver")
                                    / path.name))
        assert sc.name == generic.name
        run_by_matrix = [m for m in matrix[sc.target.integration] if m.name == sc.name]
        assert [m.expect for m in run_by_matrix] == [sc.expect]  # the app's version, instead of the generic
        assert sc.expect[:len(generic.expect)] == generic.expect and len(sc.expect) > len(generic.expect)


NODE = REPO / "examples" / "node_login"
NODE_BUGS = {"fail_closed_on_busy": ("code26-fails-open", "verification_fail_open"),
             "no_sdk_timeout": ("hang-fails-open", "verification_fail_open"),
             "dr_any_appid": ("dr-tickets", "forged_dr_ticket_refused"),
             "retry_no_backoff": ("verification-calls-bounded", "calls_per_action_bounded")}


@pytest.mark.skipif(not (NODE / "server.js").exists() or not (NODE / "node_modules").exists(),
                    reason="the Node.js login backend (examples/node_login, `make example-apps`) is not here")
@pytest.mark.parametrize("variant", [None, *sorted(NODE_BUGS)])
def test_node_login_runs_the_catalogue_through_its_profile(tmp_path, variant):
    """The generic captcha catalogue, unchanged, against the Node.js backend's profile: no wrapper."""
    if variant is None:
        r = harness("run", str(REPO / "scenarios/captcha"), "-q", "--report-dir", str(tmp_path / "r"),
                    "--profile", str(NODE / "profile.yaml"), cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        return
    scenario, invariant = NODE_BUGS[variant]
    r = harness("run", str(REPO / "scenarios/captcha" / f"{scenario}.yaml"), "-q", "--report-dir",
                str(tmp_path / "r"), "--profile", str(NODE / "profile.yaml"), "--variant", variant, cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    failed = {i["name"] for i in summary(next((tmp_path / "r").iterdir()))["invariants"] if not i["ok"]}
    assert invariant in failed, failed
