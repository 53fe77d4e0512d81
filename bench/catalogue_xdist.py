"""The scenario catalogue through the pytest plugin: serial vs ``-n 2`` (pytest-xdist) wall time.

    .venv/bin/python bench/catalogue_xdist.py [--workers 2] [--dist load] [--rounds 1] [PATH …]
                                                                          (default PATH: scenarios/)

Not a test; prints, per round, the wall time of ``pytest PATH…`` and of ``pytest -n WORKERS PATH…``
(each a fresh process, reports into a temporary folder), the pass/fail counts, and the speed-up.
Scenario runs mostly wait (on the target, on fault timelines), so they overlap well; the machine's
load average is printed because other processes on a 2-core box shift the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(paths: list[str], workers: int, report_dir: str, dist: str = "load") -> tuple[float, str]:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
            "-p", "no:schemathesis", "-p", "no:locust", "-p", "no:hypothesispytest",
            "--harness-report-dir", report_dir, *paths]
    if workers > 1:
        argv[3:3] = ["-n", str(workers), "--dist", dist]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    started = time.monotonic()
    out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - started
    tail = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-300:]
    counts = ", ".join(f"{n} {k}" for n, k in re.findall(r"(\d+) (passed|failed|errors?|skipped)", tail))
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in out.stdout.splitlines()
              if line.startswith(("FAILED ", "ERROR "))]
    return wall, (counts or tail) + "".join(f"\n              {f}" for f in failed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["scenarios"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--dist", default="load", help="xdist scheduling: load (default), worksteal, loadfile …")
    args = ap.parse_args()
    print(f"catalogue: {' '.join(args.paths)}; {os.cpu_count()} CPUs")
    serial_all, parallel_all = [], []
    with tempfile.TemporaryDirectory(prefix="bench-catalogue-") as d:
        for r in range(args.rounds):
            load = os.getloadavg()[0]
            serial, s_counts = run(args.paths, 1, os.path.join(d, f"serial{r}"))
            parallel, p_counts = run(args.paths, args.workers, os.path.join(d, f"xdist{r}"), args.dist)
            serial_all.append(serial)
            parallel_all.append(parallel)
            print(f"round {r + 1} (load average {load:.2f} before):")
            print(f"  serial      {serial:7.1f} s   {s_counts}")
            print(f"  -n {args.workers} {args.dist:<9}{parallel:5.1f} s   {p_counts}")
            print(f"  speed-up    {serial / parallel:7.2f}x")
    if args.rounds > 1:
        s, p = min(serial_all), min(parallel_all)
        print(f"best of {args.rounds}: serial {s:.1f} s, -n {args.workers} {p:.1f} s, speed-up {s / p:.2f}x")


if __name__ == "__main__":
    main()
