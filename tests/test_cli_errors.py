"""Bad input on the command line: one line naming the option, file, line or field, exit 2, no
traceback (issue 17 item 3)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCENARIO = "scenarios/captcha/internal-error-fails-open.yaml"


def harness(*args: str, env: dict[str, str] | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def one_line_exit_2(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


@pytest.mark.parametrize("args,needle", [
    (["serve", "--control-port", "99999"], "--control-port: expected a port number 0-65535"),
    (["serve", "--captcha-port", "-1"], "--captcha-port: expected a port number"),
    (["serve", "--seed", "1e23"], "--seed: expected an integer from 0 to 2**63-1"),
    (["serve", "--seed", "-5"], "--seed: expected an integer"),
    (["serve", "--seed", str(2**63)], "--seed: expected an integer"),
    (["serve", "--time-scale", "0"], "--time-scale: expected a finite number > 0"),
    (["serve", "--time-scale", "-1"], "--time-scale"),
    (["serve", "--time-scale", "nan"], "--time-scale"),
    (["serve", "--time-scale", "inf"], "--time-scale"),
    (["run", "--time-scale", "nan", SCENARIO], "--time-scale"),
    (["run", "--seed", "1e23", SCENARIO], "--seed"),
    (["run", "--report-dir", "/proc/nope", SCENARIO], "--report-dir: cannot create /proc/nope"),
    (["load", "--wait", "abc", SCENARIO], "--wait: expected MIN[:MAX] seconds"),
    (["load", "--wait", "2:1", SCENARIO], "--wait"),
    (["load", "--web-port", "70000", SCENARIO], "--web-port"),
])
def test_bad_options_are_one_line(args, needle):
    one_line_exit_2(harness(*args), f"harness {args[0]}: ", needle)


def test_usage_errors_are_one_line():
    one_line_exit_2(harness("run", "--no-such-option", SCENARIO), "harness: unrecognized arguments")
    one_line_exit_2(harness("nosuch"), "harness: argument COMMAND: invalid choice")


def test_validate_exit_codes(tmp_path):
    assert harness("validate", SCENARIO).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nservices:\n  captcha: {no_such_key: 1}\n")
    r = harness("validate", str(bad))
    assert r.returncode == 2 and "bad.yaml:3: services.captcha.no_such_key: unknown config key" in r.stderr
    (tmp_path / "empty").mkdir()
    one_line_exit_2(harness("validate", str(tmp_path / "empty")), "no scenario files")


def test_serve_config_file_errors_name_file_line_and_field(tmp_path):
    cases = {"captcha:\n  no_such_key: 1\n": ":2: captcha.no_such_key: unknown config key",
             "captcha:\n  ticket_lifetime_s: -1\n": ":2: captcha.ticket_lifetime_s: Input should be greater than 0",
             "nosuch: {}\n": ":1: nosuch: unknown service",
             "captcha: 5\n": ":1: captcha: expected a mapping",
             "- a\n": ":1: expected a mapping of service name",
             "captcha: [\n": ": invalid YAML"}
    for i, (body, needle) in enumerate(cases.items()):
        f = tmp_path / f"c{i}.yaml"
        f.write_bytes(body.encode())
        one_line_exit_2(harness("serve", "--config", str(f)), f"{f}{needle}" if needle[1].isdigit() else needle)
    one_line_exit_2(harness("serve", "--config", str(tmp_path / "missing.yaml")), "missing.yaml: cannot read")


def test_missing_programs_are_one_line_naming_the_field(tmp_path):
    no_tools = {"PATH": "/nonexistent", "TOXIPROXY_SERVER": "", "TOXIPROXY_URL": ""}
    redis = tmp_path / "redis.yaml"
    redis.write_text("name: r\nservices:\n  redis: {}\ntraffic: []\n")
    one_line_exit_2(harness("run", str(redis), env=no_tools), "redis.yaml:3: services.redis: redis-server not found")
    target = tmp_path / "target.yaml"
    target.write_text("name: t\ntarget:\n  command: no-such-program --port ${target.port}\n")
    one_line_exit_2(harness("run", str(target)), "target.yaml:3: target.command: command not found: no-such-program")
    links = tmp_path / "links.yaml"
    links.write_text("name: l\nservices: {solver: {}}\nlinks:\n  - integration->solver\n")
    r = harness("run", str(links), env={**no_tools, "TOXIPROXY_SERVER": str(tmp_path / "nope")})
    one_line_exit_2(r, "links.yaml:4: links: TOXIPROXY_SERVER=")
    mitm = tmp_path / "mitm.yaml"
    mitm.write_text("name: m\nservices: {solver: {}}\nlinks:\n  - {name: integration->solver, mitm: true}\n")
    r = harness("run", str(mitm), env={"TOXIPROXY_URL": "http://127.0.0.1:1", "MITMDUMP": str(tmp_path / "nope")})
    one_line_exit_2(r, "mitm.yaml:4: links[0].mitm: mitmdump not found")
    r = harness("serve", "--proxies", env={"TOXIPROXY_SERVER": str(tmp_path / "nope"), "TOXIPROXY_URL": ""})
    one_line_exit_2(r, "harness serve: --proxies: TOXIPROXY_SERVER=")
    r = harness("load", str(redis).replace("redis.yaml", "target.yaml"))
    one_line_exit_2(r, "no traffic flows")
