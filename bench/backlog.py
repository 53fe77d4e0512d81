#!/usr/bin/env python3
"""2000 connections at once against each mock: does every connection get in and get answered?

Starts ``harness serve`` (loopback only) pinned to CPU 0, then for each mock runs ``wrk -t1 -c2000
-d20s --latency`` (wrk's default 2 s timeout) pinned to CPU 1 against a cheap route, and prints wrk's
socket errors and timeouts, its 99th percentile and slowest latency, the kernel's listen-queue overflow
counter (``TcpExt ListenOverflows``, namespace-wide, so another program's overflows would count too)
over the run, and the listener's backlog as ``ss`` shows it. Without ``taskset`` (or with one CPU)
nothing is pinned. Not a test: a figure to watch (docs/reliability.md). Needs wrk (``apt-get install
wrk``).

    .venv/bin/python bench/backlog.py                   # 2000 connections, 20 s per mock
    .venv/bin/python bench/backlog.py -c 500 -d 5       # a quicker look
    .venv/bin/python bench/backlog.py --loop asyncio    # the mocks on asyncio's loop (HARNESS_LOOP)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTES = {"captcha": "/TCaptcha.js", "solver": "/res.php?key=bench&action=get&id=1",
          "chat": "/v4/openim/sendmsg?sdkappid=1&identifier=a&usersig=x&random=1&contenttype=json"}


def listen_overflows() -> int:
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split()[1:], values.split()[1:]))["ListenOverflows"])
    return 0


def backlog_of(port: int) -> str:
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout.split()
    return out[2] if len(out) > 2 else "?"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pinned(cpu: int) -> list[str]:
    """``taskset -c cpu`` when there are two CPUs to spread over, else nothing."""
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def seconds_of(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(url: str, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run([*pinned(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    connect, read, write, timeout = map(int, errors.groups()) if errors else (0, 0, 0, 0)
    requests = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    slowest = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)\s", out, re.M)
    return {"requests": int(requests.group(1)) if requests else 0, "req_s": float(rate.group(1)) if rate else 0.0,
            "connect": connect, "read": read, "write": write, "timeout": timeout,
            "p99": seconds_of(*p99.groups()) if p99 else float("nan"),
            "max": seconds_of(*slowest.groups()) if slowest else float("nan")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-c", "--connections", type=int, default=2000)
    p.add_argument("-d", "--duration", type=int, default=20, help="seconds per mock")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="the mocks' event loop")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        print("bench/backlog.py: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.connections + 1024)), hard))
    work = tempfile.mkdtemp(prefix="bench-backlog-")
    serve = subprocess.Popen([*pinned(0), sys.executable, "-m", "harness", "serve", "--journal", os.path.join(work, "j.jsonl")],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env={**os.environ, "HARNESS_LOOP": args.loop})
    failed = False
    try:
        urls = json.loads(serve.stdout.readline())
        print(f"{args.connections} connections, {args.duration} s per mock, wrk -t1 (2 s timeout); loopback; "
              f"{args.loop}; {'serve on CPU 0, wrk on CPU 1' if pinned(0) else 'not pinned'}; "
              f"load average {os.getloadavg()[0]:.1f}")
        print("| mock | backlog (ss) | requests | req/s | CPU per request | p99 | slowest | connect errors | read errors | timeouts "
              "| listen overflows |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, route in ROUTES.items():
            port = int(urls[name].rsplit(":", 1)[1])
            before, cpu = listen_overflows(), cpu_seconds(serve.pid)
            r = wrk(urls[name] + route, args.connections, args.duration)
            overflows, cpu = listen_overflows() - before, cpu_seconds(serve.pid) - cpu
            failed |= bool(r["timeout"] or r["connect"])
            print(f"| {name} | {backlog_of(port)} | {r['requests']} | {r['req_s']:.0f} | "
                  f"{cpu / max(r['requests'], 1) * 1e6:.0f} µs | {r['p99'] * 1000:.0f} ms | "
                  f"{r['max'] * 1000:.0f} ms | {r['connect']} | {r['read']} | {r['timeout']} | {overflows} |", flush=True)
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
