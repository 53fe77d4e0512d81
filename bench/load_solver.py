"""Do the mocks and the journal keep up under load? (A benchmark, not a test.)

``harness load`` drives the reference CaptchaAI solver client (examples/solver_client, variant
``correct``) with N locust users for T seconds, through the proxies: Toxiproxy on both links
(integration→solver with the mitmproxy addon, solver→integration for pingbacks), while the
timeline injects faults (a third of the way in: every 5th pingback dropped for a third of the run;
at half time: 150 ms latency on the solver link for a sixth of the run; at two thirds: every 10th
pingback duplicated). It then prints:

- requests served: locust's requests to the client, and the requests each mock answered;
- journal events written;
- lost events, which must all be 0 (an event is lost when one side saw it happen and the journal
  has no record of it): locust requests without a driver event; driver events the batcher gave up
  on; mock requests journaled without their answer; pingbacks the client counted (its ``/status``
  counters, read before it is stopped) beyond the attempts the solver journaled; solution uses the
  client counted beyond the ``/site/submit`` requests the solver journaled;
- the harness's CPU use (the stage process: mocks, journal, control API) and the proxies' and
  the client's, over the load window;
- the invariants' verdict (no lost solution, each used exactly once, fallback polling used): the
  client's business, shown for information. Exit code 1 when an event was lost, else 0.

  .venv/bin/python bench/load_solver.py                       # 300 users, 60 s
  .venv/bin/python bench/load_solver.py --users 30 --run-time 15
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SCENARIO = """\
name: bench-load-solver
description: {users} locust users for {run_time:g} s against the reference solver client, through the proxies, with faults
extends: {base}
seed: 42
services:
  solver:
    keys: {{c0ffee00c0ffee00c0ffee00c0ffee00: {{threads: 100000, balance: 1000000000}}}}
    solve_min_s: 0.2
    solve_max_s: 1.0
links:
  - {{name: integration->solver, mitm: {mitm}}}
  - solver->integration
traffic:
  - name: solve
    rate: 100
    timeout: 30s
    request: {{method: POST, path: /solve, json: {{sitekey: "6Le-bench-${{n}}", pageurl: "https://shop.example/checkout"}}}}
timeline:
  - at: {t_drop:g}s
    add_rules:
      - id: drop-every-5th-pingback
        match: {{service: solver, action: pingback}}
        effect: {{callback: drop}}
        schedule: {{every: 5, window: {{start: {t_drop:g}s, end: {t_drop_end:g}s}}}}
  - at: {t_lat:g}s
    add_rules:
      - id: solver-link-latency
        match: {{link: integration->solver}}
        effect: {{toxic: latency, attributes: {{latency: 150}}, stream: downstream}}
        schedule: {{window: {{start: {t_lat:g}s, end: {t_lat_end:g}s}}}}
  - at: {t_dup:g}s
    add_rules:
      - id: duplicate-every-10th-pingback
        match: {{service: solver, action: pingback}}
        effect: {{callback: duplicate, count: 1, spread_ms: 100}}
        schedule: {{every: 10, window: {{start: {t_dup:g}s}}}}
expect:
  - no_lost_solutions: {{deadline: 15s}}
  - solutions_used_exactly_once: {{deadline: 15s}}
  - fallback_polling_used: {{deadline: 15s}}
"""


def write_scenario(directory: str, users: int, run_time: float, mitm: bool) -> str:
    path = os.path.join(directory, "bench-load-solver.yaml")
    with open(path, "w") as f:
        f.write(SCENARIO.format(users=users, run_time=run_time, mitm=str(mitm).lower(),
                                base=os.path.join(ROOT, "scenarios", "_targets", "solver_client.yaml"),
                                t_drop=run_time / 3, t_drop_end=2 * run_time / 3, t_lat=run_time / 2,
                                t_lat_end=2 * run_time / 3, t_dup=2 * run_time / 3))
    return path


def psutil_cores() -> int:
    import psutil
    return psutil.cpu_count() or 1


def journal_figures(run_dir: str) -> dict:
    from harness.journal import iter_events
    kinds: Counter = Counter()
    requests: Counter = Counter()
    answered: set = set()
    asked: dict = {}
    pingbacks: Counter = Counter()
    uses = 0
    for e in iter_events(os.path.join(run_dir, "journal.jsonl")):
        kinds[e.kind] += 1
        if e.kind == "request" and e.service:
            requests[e.service] += 1
            asked[(e.service, e.get("rid"))] = e
            if e.service == "solver" and e.action == "site.submit":
                uses += 1
        elif e.kind == "response":
            answered.add((e.service, e.get("rid")))
        elif e.kind == "callback" and e.action == "pingback":
            pingbacks[e.get("outcome")] += 1
    unanswered = [k for k in asked if k not in answered]
    return {"kinds": kinds, "requests": requests, "unanswered": unanswered, "pingbacks": pingbacks, "uses": uses}


def run_sampled(argv: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``harness load`` (which becomes the locust process), sampling its CPU seconds and the
    machine's CPU use while it runs."""
    import psutil
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    me = psutil.Process(proc.pid)
    cpu, samples = 0.0, []
    psutil.cpu_percent(None)
    while proc.poll() is None:
        try:
            t = me.cpu_times()
            cpu = t.user + t.system
        except psutil.Error:
            pass
        samples.append(psutil.cpu_percent(None))
        try:
            proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
    log.seek(0)
    out = subprocess.CompletedProcess(argv, proc.returncode, log.read(), None)
    log.close()
    busy = sorted(samples)[len(samples) // 2] if samples else 0.0
    return out, cpu, busy


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--run-time", type=float, default=60.0, help="seconds")
    p.add_argument("--wait", default="0.5:1.5", help="seconds between a user's requests (harness load --wait)")
    p.add_argument("--no-mitm", action="store_true", help="Toxiproxy only, no mitmproxy addon on the solver link")
    p.add_argument("--report-dir", default=os.path.join(ROOT, "bench", "out", "load"))
    a = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        scenario = write_scenario(tmp, a.users, a.run_time, not a.no_mitm)
        argv = [sys.executable, "-m", "harness", "load", scenario, "--users", str(a.users),
                "--spawn-rate", str(max(1, a.users // 5)), "--run-time", f"{a.run_time:g}s", "--wait", a.wait,
                "--snapshot", "/status", "--report-dir", a.report_dir, "-q", "--", "--only-summary"]
        print("$ " + " ".join(argv[2:]), flush=True)
        proc, locust_cpu, machine = run_sampled(argv)
    run_dir = os.path.realpath(os.path.join(a.report_dir, "latest"))
    load_json = os.path.join(run_dir, "load.json")
    if not os.path.exists(load_json):
        print(proc.stdout[-4000:])
        print(f"no load.json in {run_dir} (exit code {proc.returncode})")
        return 2
    summary = json.load(open(load_json))
    load = summary["load"]
    if summary.get("error") or "locust" not in load:
        print(proc.stdout[-4000:])
        print(f"run error: {summary.get('error')} ({run_dir})")
        return 2
    locust = load["locust"]
    j = journal_figures(run_dir)
    status = load.get("snapshot") or {}
    counters = status.get("counters") or {} if isinstance(status, dict) else {}

    pb = j["pingbacks"]
    reached = pb.get("delivered", 0) + pb.get("http_error", 0) + pb.get("timeout", 0)
    client_pingbacks = counters.get("pingback", 0) + counters.get("pingback_unknown", 0)
    client_uses = sum(v for k, v in counters.items() if k.startswith("use_"))
    # an event is lost when one side saw it happen and the journal has no record of it
    lost = {
        "locust requests without a driver event": locust["requests"] - load["driver_events"],
        "driver events the batcher gave up on": locust["driver"].get("lost", 0),
        "mock requests without a journaled answer": len(j["unanswered"]),
        "pingbacks the client counted beyond the solver's journaled attempts":
            max(0, client_pingbacks - reached),
        "solution uses the client counted beyond the solver's journaled /site/submit requests":
            max(0, client_uses - j["uses"]),
    }
    cpu = load.get("cpu") or {}
    print(f"\nharness load, {a.users} users, {a.run_time:g} s, wait {a.wait}, proxies: Toxiproxy"
          f"{'' if a.no_mitm else ' + mitmproxy'} · exit code {proc.returncode} · {run_dir}")
    print(f"requests served: {locust['requests']} by the client ({locust['failures']} failed, "
          f"{locust['rps']} req/s, p50 {locust['p50_ms']} ms, p95 {locust['p95_ms']} ms, p99 {locust['p99_ms']} ms); "
          + ", ".join(f"{s} mock {n}" for s, n in sorted(j["requests"].items())))
    print(f"  solver: {j['kinds'].get('solution', 0)} solutions, pingbacks {dict(j['pingbacks'])}, "
          f"{j['uses']} solutions used; client counters {counters}")
    print(f"journal events written: {load['journal_events']} ({load['journal_events_during_load']} during the load; "
          f"{load['driver_events']} driver events)")
    for what, n in lost.items():
        print(f"lost: {n:6d}  {what}")
    for name, c in cpu.items():
        print(f"cpu: {c['cpu_s']:8.2f} s  {c['cpu_percent']:6.1f} % of one core  {name}")
    print(f"cpu: {locust_cpu:8.2f} s  {100 * locust_cpu / max(load['duration_s'], 1e-6):6.1f} % of one core  "
          f"locust (whole run, incl. start and settle)")
    print(f"machine: {psutil_cores()} cores, median {machine:.0f} % busy during the run")
    print("verdict: " + ("PASS" if summary["ok"] else "FAIL") + (f" (run error: {summary['error']})"
                                                                   if summary.get("error") else ""))
    for inv in summary["invariants"]:
        print(f"  {'✓' if inv['ok'] else '✗'} {inv['name']}: {inv['summary']}")
    return 1 if any(lost.values()) else 0  # the verdict is the client's business; lost events are ours


if __name__ == "__main__":
    sys.exit(main())
