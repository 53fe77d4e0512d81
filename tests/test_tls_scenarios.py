"""TLS per service in scenario runs and the pytest plugin: ``tls: [solver]`` serves that mock over
https with a local CA and hands the CA to the target (REQUESTS_CA_BUNDLE, SSL_CERT_FILE,
NODE_EXTRA_CA_CERTS, ``${run.tls_ca}``), so the official https-only 2captcha-python SDK runs unmodified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from harness.scenario import ScenarioError, load_scenario

pytest_plugins = ("pytester",)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATALOGUE_TLS = os.path.join(ROOT, "scenarios", "solver", "2captcha-sdk-over-tls.yaml")


def events(run_dir: str) -> list[dict]:
    with open(os.path.join(run_dir, "journal.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_2captcha_sdk_scenario_over_tls_passes(tmp_path):
    r = subprocess.run([sys.executable, "-m", "harness", "run", CATALOGUE_TLS, "--report-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)  # not from the checkout
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = next(p for p in tmp_path.iterdir() if p.name.endswith(tuple("0123456789abcdef")) and p.is_dir())
    evs = events(str(run_dir))
    urls = next(e["urls"] for e in evs if e.get("step") == "host_started")
    assert urls["solver"].startswith("https://") and urls["control"].startswith("http://")
    submits = [e for e in evs if e["kind"] == "request" and e.get("action") == "in.php"]
    assert len(submits) == 6 and all(e["params"]["soft_id"] == "4580" for e in submits)  # the SDK's own id
    assert sorted(e["status"] for e in evs if e["kind"] == "driver") == [200] * 4  # the app retries a busy solver
    assert os.path.isfile(run_dir / "tls" / "ca.pem") and os.path.isfile(run_dir / "tls" / "bundle.pem")


def test_the_target_gets_the_ca_in_the_usual_variables(tmp_path):
    (tmp_path / "env.yaml").write_text(textwrap.dedent(f"""\
        name: tls-env
        services: {{solver: {{}}, captcha: {{}}}}
        tls: [solver]
        target:
          command: [python, -c, "{PRINT_ENV}"]
          env: {{PORT: "${{target.port}}", CA: "${{run.tls_ca}}", SOLVER: "${{solver.url}}", CAPTCHA: "${{captcha.url}}"}}
          ready: {{path: /}}
        """))
    r = subprocess.run([sys.executable, "-m", "harness", "run", str(tmp_path / "env.yaml"), "--report-dir",
                        str(tmp_path / "r")], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr  # no expectations: the run itself is the check
    log = next((tmp_path / "r").glob("*-tls-env-*/target.log")).read_text()
    seen = json.loads(log.splitlines()[0])
    tls_dir = seen["CA"].rsplit("/", 1)[0]
    assert seen["CA"].endswith("/tls/ca.pem") and os.path.isabs(seen["CA"])
    assert seen["NODE_EXTRA_CA_CERTS"] == seen["CA"]
    assert seen["SSL_CERT_FILE"] == seen["REQUESTS_CA_BUNDLE"] == tls_dir + "/bundle.pem"
    bundle = open(seen["SSL_CERT_FILE"]).read()
    assert open(seen["CA"]).read().strip() in bundle and bundle.count("BEGIN CERTIFICATE") > 10  # + public roots
    assert seen["SOLVER"].startswith("https://") and seen["CAPTCHA"].startswith("http://")


PRINT_ENV = ("import json, os, http.server as h; "
             "print(json.dumps({k: os.environ.get(k) for k in ('CA', 'SOLVER', 'CAPTCHA', 'SSL_CERT_FILE', "
             "'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS')}), flush=True); "
             "h.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), h.SimpleHTTPRequestHandler).serve_forever()")


@pytest.mark.parametrize("tls, message", [
    ("[captcha]", "tls[0]: 'captcha' is not a mock this scenario runs (services: solver)"),
    ("solver", "tls: Input should be a valid list"),
])
def test_tls_names_a_running_mock(tmp_path, tls, message):
    f = tmp_path / "bad.yaml"
    f.write_text(f"name: bad\nservices: {{solver: {{}}}}\ntls: {tls}\ntarget: {{url: 'http://127.0.0.1:1'}}\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(f))
    assert ":3: " in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_pytest_plugin_serves_the_chosen_mocks_over_tls(pytester):
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(scope="session")
        def harness_tls():
            return ["solver"]
    """)
    pytester.makepyfile("""
        import requests, twocaptcha

        def test_sdk_solves_over_https(harness, solver_mock, captcha_mock, monkeypatch):
            assert solver_mock.url.startswith("https://") and captcha_mock.url.startswith("http://")
            assert harness.ca_env["REQUESTS_CA_BUNDLE"].endswith("bundle.pem")
            for k, v in harness.ca_env.items():
                monkeypatch.setenv(k, v)
            sdk = twocaptcha.TwoCaptcha("c0ffee00c0ffee00c0ffee00c0ffee00", server=solver_mock.host_port,
                                        pollingInterval=1, recaptchaTimeout=15)
            result = sdk.recaptcha(sitekey="6Le-site-key", url="https://shop.example/")
            assert result["code"] and solver_mock.requests("in.php")[0]["params"]["soft_id"] == "4580"
            assert requests.get(solver_mock.url + "/res.php", verify=harness.ca_file, timeout=5).status_code == 200
    """)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-q")
    result.assert_outcomes(passed=1)
