#!/usr/bin/env python3
"""Our captcha mock at two git revisions, side by side in one run: is a change slower?

    python bench/compare_revisions.py BASE [HEAD] [--rounds 4] [--duration 8]

Each revision is checked out into a temporary worktree and served from there (`python -m harness
serve` with that tree first on the path, the same interpreter and packages); the same signed
DescribeCaptchaResult POST and the same inactive rule as `make bench` ("ours, 1 inactive rule"),
server on CPU 0, wrk on CPU 1, rounds in alternating order (A B B A …), medians and the ratio from
this run only. Prints the load average: other work on the machine lowers both sides, not the ratio's
direction, but widens its spread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)

import run as bench  # noqa: E402  (bench/run.py: process, measure, signed_request, post_json)


def serve_rev(tree: str, seconds: float) -> dict:
    port, control = bench.free_port(), bench.free_port()
    journal = os.path.join(tempfile.gettempdir(), f"compare-{os.getpid()}-{port}.jsonl")
    argv = [bench.PY, "-m", "harness", "serve", "--services", "captcha", "--captcha-port", str(port),
            "--control-port", str(control), "--journal", journal]
    try:
        with bench.process(argv, cwd=tree) as proc:
            bench.json.loads(proc.stdout.readline())
            bench.post_json(f"http://127.0.0.1:{control}/rules",
                            {"match": {"service": "captcha", "params": {"Ticket": "never"}},
                             "effect": {"error": "InternalError"}})
            body, headers = bench.signed_request(port)
            env = {"BENCH_BODY": body, "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items())}
            return bench.measure(proc, f"http://127.0.0.1:{port}/", seconds, env,
                                 os.path.join(BENCH, "captcha_post.lua"))
    finally:
        if os.path.exists(journal):
            os.unlink(journal)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base")
    ap.add_argument("head", nargs="?", default="HEAD")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=int, default=8)
    args = ap.parse_args()
    trees, results = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for rev in (args.base, args.head):
                path = os.path.join(tmp, rev.replace("/", "_"))
                subprocess.run(["git", "-C", ROOT, "worktree", "add", "-q", "--detach", path, rev], check=True)
                trees[rev], results[rev] = path, []
            order = [args.base, args.head]
            for r in range(args.rounds):
                for rev in (order if r % 2 == 0 else order[::-1]):
                    res = serve_rev(trees[rev], args.duration)
                    results[rev].append(res)
                    res["per_cpu_s"] = res["rps"] * 100 / max(res["cpu_pct"], 1)
                    print(f"round {r + 1} {rev:>12}: {res['rps']:8.0f} req/s  p99 {res['p99_ms']:.2f} ms  "
                          f"{res['per_cpu_s']:6.0f} req per server CPU-s", flush=True)
        finally:
            for path in trees.values():
                subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", path], check=False)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; wrk -t1 -c{bench.CONNECTIONS}, "
          f"{args.rounds} x {args.duration:g} s per revision")
    med = {rev: statistics.median(r["rps"] for r in rs) for rev, rs in results.items()}
    for rev, rs in results.items():
        spread = [round(r["rps"]) for r in rs]
        print(f"{rev:>12}: median {med[rev]:.0f} req/s  (rounds {spread})  "
              f"p99 median {statistics.median(r['p99_ms'] for r in rs):.2f} ms")
    print(f"ratio {args.head} / {args.base}: {med[args.head] / med[args.base]:.3f}")
    per_cpu = {rev: statistics.median(r["per_cpu_s"] for r in rs) for rev, rs in results.items()}
    print(f"requests per server CPU-second (less moved by other work): {args.base} {per_cpu[args.base]:.0f}, "
          f"{args.head} {per_cpu[args.head]:.0f}, ratio {per_cpu[args.head] / per_cpu[args.base]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
