"""What every bench script measures with: a server process pinned to CPU 0 (its own session, paused
and resumed as a whole), `wrk -t1 -c64` pinned to CPU 1, the server's CPU time over the run."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from typing import IO, Any, Iterator

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
OUT = os.path.join(BENCH, "out")
PY = sys.executable
CONNECTIONS = 64
SERVER_CPU, CLIENT_CPU = 0, 1


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} never opened")


def pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


@contextmanager
def process(argv: list[str], cpu: int = SERVER_CPU, stdout: int | IO[Any] = subprocess.PIPE,
            **kw: Any) -> Iterator[subprocess.Popen]:
    """``argv`` pinned to ``cpu`` in its own session; on exit the whole session is resumed (it may
    have been paused) and terminated, killed if it lingers."""
    proc = subprocess.Popen(pinned(cpu) + argv, stdout=stdout, stderr=subprocess.DEVNULL,
                            start_new_session=True, text=True, **kw)
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGCONT)
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def pause(proc: subprocess.Popen) -> None:
    """Stop the server's whole session (SIGSTOP) while other servers are measured: a warmed JVM keeps
    its compiled code and takes no CPU."""
    os.killpg(proc.pid, signal.SIGSTOP)


def resume(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGCONT)
    time.sleep(0.5)


def post_json(url: str, obj: object) -> bytes:
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=10).read()


def wrk(url: str, seconds: float, env: dict[str, str], script: str | None) -> dict[str, Any]:
    argv = pinned(CLIENT_CPU) + ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency"]
    if script:
        argv += ["-s", script]
    done = subprocess.run(argv + [url], capture_output=True, text=True, env={**os.environ, **env}, timeout=seconds + 30)
    out = done.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk against {url} printed no rate (exit {done.returncode}): "
                           f"{(done.stderr or out).strip()[-300:]}")
    lat = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[pct] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(found.group(1)), "p50_ms": lat.get("50", float("nan")), "p99_ms": lat.get("99", float("nan")),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1).strip() if errors else ""}


def measure(proc: subprocess.Popen, url: str, seconds: float, env: dict[str, str], script: str | None) -> dict[str, Any]:
    """One wrk run, with the server session's CPU time over it (``cpu_pct``: 100 = one core busy)."""
    p = psutil.Process(proc.pid)
    procs = [p] + p.children(recursive=True)
    cpu0 = sum(sum(x.cpu_times()[:2]) for x in procs)
    result = wrk(url, seconds, env, script)
    cpu1 = sum(sum(x.cpu_times()[:2]) for x in procs if x.is_running())
    result["cpu_pct"] = round(100 * (cpu1 - cpu0) / seconds, 1)
    return result
