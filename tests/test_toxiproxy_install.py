"""``harness toxiproxy [install]``: where the server is found, and a one-line answer when Go is missing."""

from __future__ import annotations

import os
import subprocess
import sys


def harness(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", "toxiproxy", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})


def test_install_without_go_is_one_line(tmp_path):
    env = {"PATH": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}  # no go, no toxiproxy-server
    r = harness("install", "--force", env=env)
    assert r.returncode == 2 and r.stdout == ""
    line, = r.stderr.splitlines()
    assert line.startswith("harness toxiproxy: go not found") and "https://go.dev/dl/" in line
    assert str(tmp_path / "cache" / "chaos-harness" / "bin") in line and "Traceback" not in r.stderr


def test_where_prints_the_binary_found_and_install_keeps_it(tmp_path):
    fake = tmp_path / "bin" / "toxiproxy-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}{os.pathsep}/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    r = harness(env=env)
    assert r.returncode == 0 and r.stdout.strip() == str(fake)
    r = harness("install", env=env)  # found already: nothing is built
    assert r.returncode == 0 and r.stdout.strip() == str(fake) and not (tmp_path / "cache").exists()
