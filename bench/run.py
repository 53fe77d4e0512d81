#!/usr/bin/env python3
"""`make bench`: our mocks against WireMock and Mountebank, side by side, in one run.

Each server runs alone on CPU 0 (taskset), wrk runs on CPU 1 with the same settings against the same
DescribeCaptchaResult-style stub; several rounds in alternating order; medians and the ratios of ours
to each peer from this run only. Then the other figures (pingback rate, proxy hops, fixture reset,
catalogue -n 2) from their own scripts. Writes bench/RESULTS.md. Bounded: a few minutes.

Options: --duration S (per wrk run, default 8), --rounds N (default 3), --quick (2 s, 1 round, no extras).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from typing import Iterator

import psutil

from harness.ports import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
PY = sys.executable
CONNECTIONS = 64
STUB = {"Response": {"CaptchaCode": 1, "CaptchaMsg": "OK", "EvilLevel": 0, "GetCaptchaTime": 0,
                     "RequestId": "5b8e4c5e-0d5c-4b5f-9b1e-3f4f5e6a7b8c"}}


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} never opened")


@contextmanager
def process(argv: list[str], cpu: int = 0, **kw) -> Iterator[subprocess.Popen]:
    taskset = ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []
    proc = subprocess.Popen(taskset + argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True, text=True, **kw)
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, 9)


def post_json(url: str, obj: object) -> bytes:
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=10).read()


def wrk(url: str, seconds: float, env: dict[str, str], script: str | None) -> dict[str, float]:
    argv = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    argv += ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    if script:
        argv += ["-s", script]
    done = subprocess.run(argv + [url], capture_output=True, text=True, env={**os.environ, **env}, timeout=seconds + 30)
    out = done.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk against {url} printed no rate (exit {done.returncode}): "
                           f"{(done.stderr or out).strip()[-300:]}")
    rps = float(found.group(1))
    lat = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[pct] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": lat.get("50", float("nan")), "p99_ms": lat.get("99", float("nan")),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else ""}


def measure(proc: subprocess.Popen, url: str, seconds: float, env: dict[str, str], script: str | None) -> dict:
    p = psutil.Process(proc.pid)
    procs = [p] + p.children(recursive=True)
    cpu0 = sum(sum(x.cpu_times()[:2]) for x in procs)
    result = wrk(url, seconds, env, script)
    cpu1 = sum(sum(x.cpu_times()[:2]) for x in procs if x.is_running())
    result["cpu_pct"] = round(100 * (cpu1 - cpu0) / seconds, 1)
    return result


# --- the servers ------------------------------------------------------------------------------
def signed_request(port: int) -> tuple[str, dict[str, str]]:
    sys.path.insert(0, ROOT)
    from mocks.captcha.config import DEFAULT_APP_ID, DEFAULT_APP_SECRET_KEY, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
    from mocks.captcha.signature import sign_headers
    body = json.dumps({"CaptchaType": 9, "Ticket": "t03bench", "UserIp": "127.0.0.1", "Randstr": "@abc",
                       "CaptchaAppId": DEFAULT_APP_ID, "AppSecretKey": DEFAULT_APP_SECRET_KEY})
    headers = sign_headers(secret_id=DEFAULT_SECRET_ID, secret_key=DEFAULT_SECRET_KEY, host=f"127.0.0.1:{port}",
                           action="DescribeCaptchaResult", payload=body.encode())
    return body, headers


# the rule every run of ours carries: the rule engine is consulted, this rule never fires
INACTIVE_RULE = {"match": {"service": "captcha", "params": {"Ticket": "never"}}, "effect": {"error": "InternalError"}}


def wrk_env(body: str, headers: dict[str, str]) -> dict[str, str]:
    """What bench/captcha_post.lua reads: the body and the headers of the request it sends."""
    return {"BENCH_BODY": body, "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items())}


def solver_res_url(control: str, solver: str) -> str:
    """A res.php?action=get URL for a task just created with in.php (the solver's polling call)."""
    key = json.loads(urllib.request.urlopen(control + "/solver/config").read())["keys"]
    key = next(iter(key)) if isinstance(key, dict) else key[0]
    task = urllib.request.urlopen(f"{solver}/in.php?key={key}&method=userrecaptcha"
                                  f"&googlekey=k&pageurl=http://x").read().decode().split("|")[1]
    return f"{solver}/res.php?key={key}&action=get&id={task}"


def run_ours(kind: str, seconds: float) -> dict:
    port, control = free_port(), free_port()
    journal = os.path.join(BENCH, "out", f"journal-{kind}.jsonl")
    os.makedirs(os.path.dirname(journal), exist_ok=True)
    service = "solver" if kind == "solver res.php" else "captcha"
    argv = [PY, "-m", "harness", "serve", "--services", service, f"--{service}-port", str(port),
            "--control-port", str(control), "--journal", journal]
    with process(argv, cwd=ROOT) as proc:
        json.loads(proc.stdout.readline())
        c = f"http://127.0.0.1:{control}"
        if service == "captcha":
            post_json(c + "/rules", {"match": {"service": "captcha", "params": {"Ticket": "never"}},
                                     "effect": {"error": "InternalError"}})
            if kind == "ours, rule on 10%":
                post_json(c + "/rules", {"match": {"service": "captcha"}, "effect": {"captcha_code": 26},
                                         "schedule": {"probability": 0.1}})
            body, headers = signed_request(port)
            env = {"BENCH_BODY": body, "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items())}
            result = measure(proc, f"http://127.0.0.1:{port}/", seconds, env, os.path.join(BENCH, "captcha_post.lua"))
        else:
            key = json.loads(urllib.request.urlopen(c + "/solver/config").read())["keys"]
            key = next(iter(key)) if isinstance(key, dict) else key[0]
            task = urllib.request.urlopen(f"http://127.0.0.1:{port}/in.php?key={key}&method=userrecaptcha"
                                          f"&googlekey=k&pageurl=http://x").read().decode().split("|")[1]
            result = measure(proc, f"http://127.0.0.1:{port}/res.php?key={key}&action=get&id={task}", seconds, {}, None)
        events = sum(1 for _ in open(journal, "rb"))
        result["journal_events"] = events
    return result


def run_wiremock(seconds: float, warmup: float) -> dict:
    jar = os.path.join(BENCH, "node_modules", "wiremock", "build")
    jar = os.path.join(jar, next(f for f in os.listdir(jar) if f.endswith(".jar")))
    port = free_port()
    root = os.path.join(BENCH, "out", "wiremock")
    os.makedirs(root, exist_ok=True)
    with process(["java", "-jar", jar, "--port", str(port), "--disable-banner", "--root-dir", root], cwd=BENCH) as proc:
        wait_port(port)
        post_json(f"http://127.0.0.1:{port}/__admin/mappings", {
            "request": {"method": "POST", "url": "/"},
            "response": {"status": 200, "jsonBody": STUB, "headers": {"Content-Type": "application/json"}}})
        body, headers = signed_request(port)
        env = {"BENCH_BODY": body, "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items())}
        if warmup:
            wrk(f"http://127.0.0.1:{port}/", warmup, env, os.path.join(BENCH, "captcha_post.lua"))
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/__admin/requests", method="DELETE"))
        return measure(proc, f"http://127.0.0.1:{port}/", seconds, env, os.path.join(BENCH, "captcha_post.lua"))


def run_mountebank(seconds: float) -> dict:
    mb = os.path.join(BENCH, "node_modules", ".bin", "mb")
    admin, port = free_port(), free_port()
    os.makedirs(os.path.join(BENCH, "out"), exist_ok=True)
    with process([mb, "start", "--port", str(admin), "--loglevel", "warn", "--logfile",
                  os.path.join(BENCH, "out", "mb.log"), "--pidfile", os.path.join(BENCH, "out", "mb.pid")],
                 cwd=BENCH) as proc:
        wait_port(admin)
        post_json(f"http://127.0.0.1:{admin}/imposters", {
            "protocol": "http", "port": port,
            "stubs": [{"predicates": [{"equals": {"method": "POST", "path": "/"}}],
                       "responses": [{"is": {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                                             "body": STUB}}]}]})
        wait_port(port)
        body, headers = signed_request(port)
        env = {"BENCH_BODY": body, "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items())}
        return measure(proc, f"http://127.0.0.1:{port}/", seconds, env, os.path.join(BENCH, "captcha_post.lua"))


def versions() -> dict[str, str]:
    def cmd(argv: list[str]) -> str:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    def npm_version(name: str) -> str:
        try:
            with open(os.path.join(BENCH, "node_modules", name, "package.json")) as f:
                return json.load(f)["version"]
        except OSError:
            return "?"
    import aiohttp

    from harness import loops
    loop = loops.name() + (f" {loops.uvloop.__version__}" if loops.name() == "uvloop" else "")
    return {"python": platform.python_version(), "aiohttp": aiohttp.__version__, "event loop": loop,
            "java": cmd(["java", "-version"]),
            "node": cmd(["node", "--version"]), "wiremock": npm_version("wiremock"),
            "mountebank": npm_version("mountebank"), "wrk": cmd(["wrk", "--version"]).split(" [")[0]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=15, help="WireMock JIT warm-up seconds")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.rounds, args.warmup = 2, 1, 2
    for tool in ("wrk", "java", "node"):
        if not shutil.which(tool):
            print(f"bench: {tool} not found (make bench installs wrk and the npm peers)", file=sys.stderr)
            return 2
    servers = {
        "WireMock": lambda first: run_wiremock(args.duration, args.warmup),  # a fresh JVM every round: warm it
        "Mountebank": lambda first: run_mountebank(args.duration),
        "ours, 1 inactive rule": lambda first: run_ours("ours, 1 inactive rule", args.duration),
        "ours, rule on 10%": lambda first: run_ours("ours, rule on 10%", args.duration),
        "solver res.php": lambda first: run_ours("solver res.php", args.duration),
    }
    results: dict[str, list[dict]] = {k: [] for k in servers}
    order = list(servers)
    for r in range(args.rounds):
        for name in (order if r % 2 == 0 else list(reversed(order))):
            res = servers[name](r == 0)
            results[name].append(res)
            print(f"round {r + 1} {name:<24} {res['rps']:>9.0f} req/s  p50 {res['p50_ms']:.2f} ms  "
                  f"p99 {res['p99_ms']:.2f} ms  cpu {res['cpu_pct']}%", flush=True)
    med = {name: {k: statistics.median(x[k] for x in runs) for k in ("rps", "p50_ms", "p99_ms", "cpu_pct")}
           for name, runs in results.items()}
    lines = [f"| server | req/s (median) | p50 ms | p99 ms | server CPU % |", "|---|---|---|---|---|"]
    for name, m in med.items():
        lines.append(f"| {name} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['cpu_pct']:.0f} |")
    ratios = []
    for ours in ("ours, 1 inactive rule", "ours, rule on 10%"):
        for peer in ("WireMock", "Mountebank"):
            ratios.append(f"| {ours} / {peer} | {med[ours]['rps'] / med[peer]['rps']:.2f}× req/s | "
                          f"{med[ours]['p99_ms'] / med[peer]['p99_ms']:.2f}× p99 (lower is better) |")
    table = "\n".join(lines)
    ratio_table = "| ratio | throughput | tail latency |\n|---|---|---|\n" + "\n".join(ratios)
    print("\n" + table + "\n\n" + ratio_table)
    extras = "" if args.quick else run_extras()
    write_results(table, ratio_table, extras, args)
    return 0


EXTRA_SCRIPTS = [("pingback dispatch rate", "pingback_rate.py"), ("added latency per proxy hop", "proxy_latency.py"),
                 ("per-test fixture reset cost", "fixture_reset.py"), ("catalogue wall time, serial vs -n 2", "catalogue_xdist.py")]


def run_extras() -> str:
    out = []
    for title, script in EXTRA_SCRIPTS:
        path = os.path.join(BENCH, script)
        if not os.path.exists(path):
            out.append(f"### {title}\n\n(not available: {script} missing)\n")
            continue
        print(f"\n== {title} ({script})", flush=True)
        r = subprocess.run([PY, path], cwd=ROOT, capture_output=True, text=True, timeout=900)
        text = (r.stdout.strip() or r.stderr.strip()[-2000:])
        print(text, flush=True)
        out.append(f"### {title}\n\n`python bench/{script}`\n\n```\n{text}\n```\n")
    return "\n".join(out)


def write_results(table: str, ratio_table: str, extras: str, args: argparse.Namespace) -> None:
    v = versions()
    machine = (f"{platform.machine()}, {psutil.cpu_count()} cores, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.platform()}")
    text = f"""# Benchmark results

Produced by `make bench` (`python bench/run.py`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.
Machine: {machine}. Versions: {', '.join(f'{k} {val}' for k, val in v.items())}.

Method: each server alone, pinned to CPU 0; `wrk -t1 -c{CONNECTIONS} -d{args.duration:g}s --latency` pinned
to CPU 1 sends the same signed DescribeCaptchaResult POST (the peers serve a static stub of the same
answer; ours verifies the TC3 signature, looks the ticket up, consults the rule engine and journals
request, decision and response). {args.rounds} round(s), alternating order, medians. WireMock (a fresh
JVM each round) is warmed up {args.warmup:g} s before every measurement. Server CPU is the server process's CPU time over the wrk run.

{table}

{ratio_table}

{extras}
"""
    with open(os.path.join(BENCH, "RESULTS.md"), "w") as f:
        f.write(text)
    print(f"\nwrote bench/RESULTS.md")


if __name__ == "__main__":
    sys.exit(main())
