"""Which part saturates first in a distributed load run? (A benchmark, not a test.)

Runs ``harness load`` as a locust master (the stage: mocks, journal, control API, and the target it
starts) with 2 locust workers on this machine, at rising user counts with no wait between requests,
and for each step prints locust's request rate and the CPU each part used over the measured window
(in % of one core): the locust master, the workers, the stage (the mock process), the target; then
each part's CPU milliseconds per request and the rate at which it alone would fill one core (the
workers are two processes: twice that). A part at ~100 % of one core is saturated (each is one
Python process, one loop); the machine is saturated when the sum reaches its core count. CPU per
request changes little with other load on the machine; req/s does. The figures go into docs/scale.md.

  .venv/bin/python bench/scale.py                                   # 10, 40, 160 users, 20 s each
  .venv/bin/python bench/scale.py --users 20 --users 80 --run-time 15
  .venv/bin/python bench/scale.py --profile examples/node_login/profile.yaml      # a Node.js target
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import subprocess
import sys
import tempfile
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = [sys.executable, "-m", "harness", "load"]


def role(p: psutil.Process, workers: set[int]) -> str:
    try:
        cmd = " ".join(p.cmdline())
    except psutil.Error:
        return "gone"
    if p.pid in workers:
        return "locust workers"
    if "harness.load.stage" in cmd:
        return "stage (mocks)"
    if "locust" in cmd or "harness load" in cmd or "-m harness load" in cmd:
        return "locust master"
    return "target"


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_by_role(roots: list[int], workers: set[int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in roots:
        for p in tree(r):
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            # a worker's children (none expected) count with the workers
            name = "locust workers" if r in workers else role(p, workers)
            out[name] = out.get(name, 0.0) + t.user + t.system
    return out


def step(scenario: str, users: int, run_time: int, port: int, out: str, profile: list[str]) -> dict[str, object]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    report = tempfile.mkdtemp(prefix=f"u{users}-", dir=out)
    master = subprocess.Popen([*HARNESS, scenario, *profile, "--master", "--expect-workers", "2", "-u", str(users),
                               "-r", str(users), "-t", f"{run_time}s", "--wait", "0", "-q",
                               "--master-bind-port", str(port), "--report-dir", report],
                              cwd=ROOT, env=env, stdout=open(os.path.join(report, "master.log"), "wb"),
                              stderr=subprocess.STDOUT)
    time.sleep(2)
    workers = [subprocess.Popen([*HARNESS, scenario, *profile, "--worker", "--master-port", str(port), "-q"], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT) for _ in range(2)]
    wpids = {w.pid for w in workers}
    try:
        # the stage starts the target and mocks; the test starts once both workers are there
        time.sleep(8 + min(5, run_time / 4))
        before, t0 = cpu_by_role([master.pid, *wpids], wpids), time.monotonic()
        time.sleep(run_time / 2)
        after, t1 = cpu_by_role([master.pid, *wpids], wpids), time.monotonic()
        master.wait(timeout=run_time + 120)
    finally:
        for p in [master, *workers]:
            if p.poll() is None:
                p.terminate()
        for p in [master, *workers]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    stats = sorted(glob.glob(os.path.join(report, "*", "locust_stats.csv")))
    rps = fails = None
    if stats:
        with open(stats[-1]) as f:
            for row in csv.DictReader(f):
                if row.get("Name") == "Aggregated":
                    rps, fails = float(row["Requests/s"]), int(row["Failure Count"])
    cpu = {k: round(100 * (after.get(k, 0.0) - before.get(k, 0.0)) / (t1 - t0), 1) for k in after}
    return {"users": users, "rps": rps, "failures": fails, "cpu": cpu, "exit": master.returncode}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/captcha/healthy-enforces.yaml")
    ap.add_argument("--users", type=int, action="append", help="user counts (repeatable; default 10 40 160)")
    ap.add_argument("--run-time", type=int, default=20, help="seconds per step (CPU measured over the middle half)")
    ap.add_argument("--port", type=int, default=5957)
    ap.add_argument("--profile", help="run the scenario against this target profile (e.g. a faster target)")
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="bench-scale-")
    roles = ["locust master", "locust workers", "stage (mocks)", "target"]
    print(f"scale: {args.scenario}{' --profile ' + args.profile if args.profile else ''}, locust master + 2 workers, --wait 0, {args.run_time} s per step; "
          f"{os.cpu_count()} CPUs; CPU in % of one core over the middle of each step")
    print(f"{'users':>6} {'req/s':>8} {'fail':>5}  " + "  ".join(f"{r:>15}" for r in roles) + "  exit")
    for users in args.users or [10, 40, 160]:
        r = step(args.scenario, users, args.run_time, args.port, out, ["--profile", args.profile] if args.profile else [])
        cpu = r["cpu"]
        rps = "-" if r["rps"] is None else f"{r['rps']:.0f}"
        print(f"{users:>6} {rps:>8} {r['failures'] if r['failures'] is not None else '-':>5}  "
              + "  ".join(f"{cpu.get(k, 0.0):>14.0f}%" for k in roles) + f"  {r['exit']}", flush=True)
        if r["rps"]:
            # CPU per request is what other load on the machine changes least: one core divided by it
            # is the rate at which that part alone would saturate
            per = {k: 10 * cpu.get(k, 0.0) / r["rps"] for k in roles}
            print(f"{'':>6} {'ms/req':>8} {'':>5}  " + "  ".join(f"{per[k]:>15.2f}" for k in roles))
            print(f"{'':>6} {'ceiling':>8} {'':>5}  " + "  ".join(
                f"{(1000 / per[k] if per[k] else float('inf')):>11.0f} r/s" for k in roles))
    print(f"load average {os.getloadavg()[0]:.2f}; runs under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
