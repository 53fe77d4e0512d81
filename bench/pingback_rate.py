#!/usr/bin/env python3
"""Pingback dispatch rate of the solver mock, with callback faults on.

Starts the solver mock (a ``MockHost`` with a real journal) in this process and an aiohttp
pingback receiver in another process, adds seeded fault rules (default: 10 % of pingbacks
duplicated, 5 % dropped), then creates many tasks that solve at once and each send a pingback.
Prints callbacks/s: pingback attempts (deliveries + duplicate copies) per second of wall time,
from the first solution to the last attempt journaled. Not a test: a figure to watch.

    .venv/bin/python bench/pingback_rate.py                 # tasks created in-process
    .venv/bin/python bench/pingback_rate.py --via-http      # tasks submitted through in.php
                                                            # by a third process
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.host import MockHost  # noqa: E402
from harness.journal import read_events  # noqa: E402
from mocks.solver import DEFAULT_KEY  # noqa: E402
from mocks.solver.methods import METHODS  # noqa: E402
from mocks.solver.receiver import PingbackReceiver  # noqa: E402


# --- the receiver process ------------------------------------------------------------------------
def _receiver_main(port_q: "mp.Queue", stop_ev: "mp.Event", count: "mp.Value",  # type: ignore[name-defined]
                   cpu: "mp.Value") -> None:  # type: ignore[name-defined]
    async def run() -> None:
        rec = PingbackReceiver(keep=False)
        await rec.start()
        port_q.put(rec.port)
        c0 = time.process_time()
        while not stop_ev.is_set():
            count.value = rec.count
            await asyncio.sleep(0.05)
        count.value = rec.count
        cpu.value = time.process_time() - c0
        await rec.stop()
    asyncio.run(run())


# --- the HTTP submitter process (--via-http) -----------------------------------------------------
def _submitter_main(solver_url: str, pingback: str, n: int, concurrency: int, done: "mp.Value") -> None:  # type: ignore[name-defined]
    import aiohttp

    async def run() -> None:
        params = {"key": DEFAULT_KEY, "method": "userrecaptcha", "googlekey": "6Le-bench",
                  "pageurl": "https://bench.test/", "pingback": pingback, "json": "1"}
        todo = iter(range(n))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
            async def worker() -> None:
                for _ in todo:
                    async with s.get(solver_url + "/in.php", params=params) as r:
                        body = await r.json()
                        assert body["status"] == 1, body
                    done.value += 1
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    asyncio.run(run())


async def bench(args: argparse.Namespace) -> dict:
    ctx = mp.get_context("spawn")
    port_q, stop_ev, received, receiver_cpu = ctx.Queue(), ctx.Event(), ctx.Value("q", 0), ctx.Value("d", 0.0)
    receiver = ctx.Process(target=_receiver_main, args=(port_q, stop_ev, received, receiver_cpu), daemon=True)
    receiver.start()
    submitter = None
    run_dir = tempfile.mkdtemp(prefix="pingback-bench-")
    host = MockHost(seed=args.seed, run_dir=run_dir, services={"solver": {
        "solve_distribution": "fixed", "solve_min_s": 0, "solve_max_s": 0,
        "pingback_method": args.method, "keys": {DEFAULT_KEY: {"threads": 100_000}}}})
    try:
        port = await asyncio.get_running_loop().run_in_executor(None, port_q.get, True, 30)
        pingback = f"http://127.0.0.1:{port}/pingback"
        await host.start()
        host.engine.add([
            {"id": "dup", "match": {"service": "solver", "action": "pingback"},
             "effect": {"callback": "duplicate", "count": 1}, "schedule": {"probability": args.dup}},
            {"id": "drop", "match": {"service": "solver", "action": "pingback"},
             "effect": {"callback": "drop"}, "schedule": {"probability": args.drop}},
        ])
        mock = host.services["solver"]
        sender = mock.callbacks
        t0, c0 = time.perf_counter(), time.process_time()
        if args.via_http:
            done = ctx.Value("q", 0)
            submitter = ctx.Process(target=_submitter_main, daemon=True, args=(
                host.urls["solver"], pingback, args.tasks, args.concurrency, done))
            submitter.start()
            while submitter.is_alive() or sender._tasks:
                await asyncio.sleep(0.02)
        else:
            method = METHODS["userrecaptcha"]
            created = 0
            while created < args.tasks:
                # keep a bounded number of pingbacks in flight, like a steady stream of solves
                while len(sender._tasks) > args.in_flight:
                    await asyncio.sleep(0.001)
                for _ in range(min(args.batch, args.tasks - created)):
                    mock.book.create(DEFAULT_KEY, method, "6Le-bench", pingback, False, False, queue=False)
                    created += 1
                await asyncio.sleep(0)
            while sender._tasks:
                await asyncio.sleep(0.005)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        await host.stop()
        if submitter is not None:
            submitter.join(5)
            if submitter.is_alive():
                submitter.kill()
        time.sleep(0.2)
        stop_ev.set()
        receiver.join(5)
        if receiver.is_alive():
            receiver.kill()
    evs = [e for e in read_events(host.journal.path) if e.kind == "callback"]
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    attempts = [e for e in evs if e["outcome"] != "dropped"]
    return {
        "tasks": args.tasks, "via": "in.php over HTTP" if args.via_http else "in-process",
        "attempts": len(attempts), "delivered": sum(e["outcome"] == "delivered" for e in evs),
        "duplicate_copies": sum(e["copy"] > 0 for e in evs), "dropped": sum(e["outcome"] == "dropped" for e in evs),
        "failed": sum(e["outcome"] not in ("delivered", "dropped") for e in evs),
        "received": received.value, "elapsed_s": round(elapsed, 3),
        "callbacks_per_s": round(len(attempts) / elapsed, 1), "journal": host.journal.path,
        "cpu_s": round(cpu, 3), "receiver_cpu_s": round(receiver_cpu.value, 3), "callbacks_per_cpu_s": round(len(attempts) / cpu, 1) if cpu else 0.0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=20_000)
    p.add_argument("--dup", type=float, default=0.10, help="probability a pingback is duplicated (once)")
    p.add_argument("--drop", type=float, default=0.05, help="probability a pingback is dropped")
    p.add_argument("--method", choices=("GET", "POST"), default="GET")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch", type=int, default=200, help="tasks created per loop turn (in-process mode)")
    p.add_argument("--in-flight", type=int, default=1000, help="max pingbacks in flight (in-process mode)")
    p.add_argument("--via-http", action="store_true", help="submit tasks through in.php from another process")
    p.add_argument("--concurrency", type=int, default=64, help="HTTP submitters (--via-http)")
    p.add_argument("--keep", action="store_true", help="keep the run journal (printed path)")
    args = p.parse_args()
    r = asyncio.run(bench(args))
    print(f"pingback rate: {r['callbacks_per_s']:.0f} callbacks/s  ({r['attempts']} attempts for {r['tasks']} "
          f"tasks in {r['elapsed_s']} s, {r['via']}; dup {args.dup:.0%} drop {args.drop:.0%}, {args.method})")
    print(f"  mock process CPU {r['cpu_s']} s → {r['callbacks_per_cpu_s']:.0f} callbacks per CPU-second "
          f"(receiver process CPU {r['receiver_cpu_s']} s; load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs — other load lowers the wall figure)")
    print(f"  delivered {r['delivered']}, duplicate copies {r['duplicate_copies']}, dropped {r['dropped']}, "
          f"failed {r['failed']}, receiver counted {r['received']}" + (f"; journal {r['journal']}" if args.keep else ""))


if __name__ == "__main__":
    main()
