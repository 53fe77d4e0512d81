#!/usr/bin/env python3
"""Where the captcha mock's handler spends its time under load: cProfile while wrk hammers it.

    python bench/profile_handler.py [--duration 6] [--service captcha|solver] [--top 25]

The same setup as `make bench` ("ours, 1 inactive rule"): the mock in this process (uvloop, the
journal on, one inactive rule), wrk -t1 -c64 on CPU 1 with the signed DescribeCaptchaResult POST
(or the solver's res.php GET), the server on CPU 0. Prints the share of the profiled time spent in
the TC3 signature check, the journal, the rule engine, the ticket verdict and the rest of the
dispatch path (the handler = the mock's outermost wrapper, cumulative), then the top functions by
own time. Also runs against an older checkout: ``python bench/profile_handler.py --tree DIR``.
cProfile slows Python code several-fold and C code not at all: shares, not absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
# --tree DIR: the mock's code (harness/, mocks/) from that checkout, the bench helpers from this one
TREE = sys.argv[sys.argv.index("--tree") + 1] if "--tree" in sys.argv[:-1] else ROOT
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.abspath(TREE))

import run as bench  # noqa: E402

# (label, module file suffix, function names): the summed cumulative time of each
HANDLER = ("handler (the mock's outermost wrapper)", "mocks/base/service.py", ("serve",))
PARTS = [
    ("TC3 signature check", "mocks/captcha/signature.py", ("verify",)),
    ("journal (events built and written)", "harness/journal/writer.py", ("write", "hold")),
    ("rule engine", "harness/faults/engine.py", ("decide",)),
    ("ticket verdict + params", "mocks/captcha/verification.py", ("verify", "check_params")),
    ("solver res.php handler", "mocks/solver/service.py", ("handle",)),
]


def cumulative(stats: pstats.Stats, suffix: str, funcs: tuple[str, ...]) -> float:
    total = 0.0
    for (path, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if name in funcs and path.endswith(suffix):
            total += ct
    return total


async def serve_and_load(args: argparse.Namespace, prof: cProfile.Profile) -> None:
    from harness.host import MockHost
    with tempfile.TemporaryDirectory() as tmp:
        host = MockHost(services={args.service: {}}, journal_path=os.path.join(tmp, "journal.jsonl"))
        urls = await host.start()
        try:
            url, env, script = await asyncio.to_thread(prepare, args.service, urls)
            wrk = ["taskset", "-c", "1"] if shutil.which("taskset") else []
            wrk += ["wrk", "-t1", f"-c{bench.CONNECTIONS}", f"-d{args.duration}s", "--latency", url]
            if script:
                wrk += ["-s", script]
            proc = await asyncio.create_subprocess_exec(*wrk, env={**os.environ, **env},
                                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            prof.enable()
            out, _ = await proc.communicate()
            prof.disable()
            print(out.decode().strip())
        finally:
            await host.stop()


def prepare(service: str, urls: dict[str, str]) -> tuple[str, dict[str, str], str | None]:
    control = urls["control"]
    port = int(urls[service].rsplit(":", 1)[1])
    if service == "captcha":
        bench.post_json(control + "/rules", bench.INACTIVE_RULE)
        body, headers = bench.signed_request(port)
        return urls[service] + "/", bench.wrk_env(body, headers), os.path.join(BENCH, "captcha_post.lua")
    return bench.solver_res_url(control, urls[service]), {}, None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=6)
    ap.add_argument("--service", choices=("captcha", "solver"), default="captcha")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--tree", default=ROOT, help="profile the mock of this checkout (default: this one)")
    args = ap.parse_args()
    if shutil.which("taskset"):
        os.sched_setaffinity(0, {0})
    from harness import loops
    prof = cProfile.Profile()
    loops.run(serve_and_load(args, prof))
    stats = pstats.Stats(prof)
    total = stats.total_tt  # type: ignore[attr-defined]
    handler = cumulative(stats, *HANDLER[1:])
    print(f"\nprofiled {total:.2f} s of CPU in Python-visible calls; handler {handler:.2f} s "
          f"({100 * handler / total:.0f} % of it)")
    rest = handler
    for label, suffix, funcs in PARTS:
        t = cumulative(stats, suffix, funcs)
        if t:
            rest -= t
            print(f"  {label:<36} {t:6.2f} s  {100 * t / handler:5.1f} % of the handler")
    print(f"  {'the rest: dispatch, parse, answer':<36} {rest:6.2f} s  {100 * rest / handler:5.1f} % of the handler")
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
