"""Added latency per proxy hop: direct vs through Toxiproxy vs through the mitmproxy addon (and the
``serve --proxies`` chain Toxiproxy → mitmproxy), at a fixed request rate, bounded in time.

    .venv/bin/python bench/proxy_latency.py [--rate 100] [--seconds 5] [--warmup 1] [--rounds 1]
                                            [--compare-addon OLD_ADDON.py]

Not a test: it prints p50/p99 per path and the difference to direct. Open loop: requests are sent on a
fixed schedule (``rate`` per second) whatever the answers do, over keep-alive connections; a request
late by more than its own interval counts in the latency (no coordinated omission). The upstream is a
tiny ServiceMock going through the full mock pipeline (journal + rules), so every path pays the same
mock cost and the difference is the hop. No rules are loaded: this is the proxies' idle cost (the
mitmproxy addon still reads every request, decides on its mirror of the run's rules and journals
every flow). ``--compare-addon`` measures another addon file beside it (before / after a change);
the last lines give each addon's p50 and p99 as a multiple of bare mitmdump's (the median over
rounds of each round's ratio: paths of one round are measured back to back, so a burst of load from
elsewhere hits a round, not one path). ``--only`` picks paths (more rounds in the same time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

import aiohttp
from pydantic import BaseModel

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.host import HostThread  # noqa: E402
from harness.proxy.toxiproxy_links import Links  # noqa: E402
from harness.proxy.mitm import MitmProxy, MitmRoute  # noqa: E402
from harness.proxy.toxiproxy_server import ToxiproxyServer  # noqa: E402
from mocks.base import Call, Reply, ServiceMock  # noqa: E402


class BenchConfig(BaseModel):
    pass


class BenchMock(ServiceMock):
    name = "bench"
    Config = BenchConfig

    async def parse(self, request):
        return Call(request.path.strip("/") or "root", dict(request.query), request)

    async def handle(self, call):
        return Reply.json({"ok": True, "n": len(call.params)})


def cpu_s(pids: list[int]) -> float:
    """User+system CPU seconds used so far by these processes (Linux /proc)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(url: str, rate: float, seconds: float, warmup: float) -> tuple[list[float], int]:
    connector = aiohttp.TCPConnector(limit=64, force_close=False)
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as s:
        async def one(scheduled: float, record: bool) -> None:
            nonlocal errors
            try:
                async with s.get(url + "/ping?x=1") as r:
                    await r.read()
                    ok = r.status == 200
            except Exception:
                ok = False
            if record:
                if ok:
                    latencies.append((time.perf_counter() - scheduled) * 1000)
                else:
                    errors += 1

        tasks = []
        interval = 1.0 / rate
        start = time.perf_counter()
        total = int((warmup + seconds) * rate)
        for i in range(total):
            scheduled = start + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(scheduled, i >= warmup * rate)))
        await asyncio.gather(*tasks)
    return latencies, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=100.0, help="requests per second (default 100)")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per path (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first (default 1)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat all paths, alternating order (default 1)")
    ap.add_argument("--only", metavar="PATHS",
                    help="measure only these paths, comma-separated (e.g. 'direct,mitmdump (no addon),mitmproxy addon')")
    ap.add_argument("--compare-addon", metavar="FILE",
                    help="also measure this addon file (e.g. an older mitm_addon.py: "
                         "git show REV:harness/proxy/mitm_addon.py > old.py)")
    args = ap.parse_args()
    run_dir = tempfile.mkdtemp(prefix="bench-proxy-")
    with HostThread(services={"bench": {}}, service_classes={"bench": BenchMock}, run_dir=run_dir) as ht, \
            ToxiproxyServer(log_path=os.path.join(run_dir, "toxiproxy.log")) as tox:
        mock_url = ht.host.urls["bench"]
        links = Links(tox.client)
        mitm = MitmProxy([MitmRoute("integration->bench", "bench", mock_url)], ht.host.urls["control"],
                         run_dir=run_dir)
        bare = MitmProxy([MitmRoute("bare", "bench", mock_url)], ht.host.urls["control"],
                         run_dir=os.path.join(run_dir, "bare"), addon=False)
        other = MitmProxy([MitmRoute("integration->bench", "bench", mock_url)], ht.host.urls["control"],
                          run_dir=os.path.join(run_dir, "other"), script=args.compare_addon or "")
        try:
            mitm_url = mitm.start()["integration->bench"]
            paths = {
                "direct": mock_url,
                "toxiproxy": links.add("integration->bench", mock_url).url(),
                "mitmdump (no addon)": bare.start()["bare"],
                "mitmproxy addon": mitm_url,
                "toxiproxy+mitm addon": links.add("integration->bench_mitm", mitm_url).url(),
            }
            procs = {"direct": [], "toxiproxy": [tox.process.pid], "mitmdump (no addon)": [bare.process.pid],
                     "mitmproxy addon": [mitm.process.pid],
                     "toxiproxy+mitm addon": [tox.process.pid, mitm.process.pid]}
            if args.compare_addon:
                paths[COMPARED] = other.start()["integration->bench"]
                procs[COMPARED] = [other.process.pid]
            results: dict[str, list[float]] = {k: [] for k in paths}
            errors: dict[str, int] = {k: 0 for k in paths}
            cpu: dict[str, float] = {k: 0.0 for k in paths}
            if args.only:
                paths = {k: v for k, v in paths.items() if k in args.only.split(",") or k == COMPARED}
            results = {k: v for k, v in results.items() if k in paths}
            per_round: dict[str, list[tuple[float, float]]] = {k: [] for k in paths}
            order = list(paths)
            for rnd in range(args.rounds):
                for name in (order if rnd % 2 == 0 else order[::-1]):
                    c0 = cpu_s(procs[name])
                    lat, err = asyncio.run(measure(paths[name], args.rate, args.seconds, args.warmup))
                    cpu[name] += cpu_s(procs[name]) - c0
                    results[name] += lat
                    if lat:
                        per_round[name].append((pct(lat, 50), pct(lat, 99)))
                    errors[name] += err
        finally:
            mitm.stop()
            bare.stop()
            other.stop()
            links.remove_all()
    print(f"proxy latency: {args.rate:g} req/s open loop, {args.seconds:g} s measured per path "
          f"x {args.rounds} round(s), keep-alive, small JSON answer from a ServiceMock")
    load = os.getloadavg()[0]
    print(f"(load average {load:.2f} on {os.cpu_count()} CPUs; proxy cpu = CPU ms per request used by the "
          "proxy process(es), warm-up included)")
    print(f"{'path':<22}{'n':>7}{'err':>5}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'+p50':>8}{'+p99':>8}"
          f"{'proxy cpu':>11}")
    base = results.get("direct", [])
    for name, lat in results.items():
        if not lat:
            print(f"{name:<22}{0:>7}{errors[name]:>5}  (no successful request)")
            continue
        add50 = pct(lat, 50) - pct(base, 50) if base else float("nan")
        add99 = pct(lat, 99) - pct(base, 99) if base else float("nan")
        sent = args.rounds * int((args.warmup + args.seconds) * args.rate)
        print(f"{name:<22}{len(lat):>7}{errors[name]:>5}{pct(lat, 50):>9.2f}{pct(lat, 99):>9.2f}"
              f"{statistics.fmean(lat):>9.2f}{add50:>8.2f}{add99:>8.2f}{cpu[name] * 1000 / sent:>11.2f}")
    bare = per_round.get("mitmdump (no addon)") or []
    for name in ("mitmproxy addon", COMPARED):
        rounds = per_round.get(name) or []
        if rounds and len(rounds) == len(bare):  # each round's ratio: the two measured minutes apart
            r50 = statistics.median(a[0] / b[0] for a, b in zip(rounds, bare))
            r99 = statistics.median(a[1] / b[1] for a, b in zip(rounds, bare))
            print(f"{name} / bare mitmdump, median of {len(rounds)} rounds: p50 x{r50:.2f}, p99 x{r99:.2f} "
                  f"(p50 {statistics.median(a[0] for a in rounds):.2f} vs {statistics.median(b[0] for b in bare):.2f} ms, "
                  f"p99 {statistics.median(a[1] for a in rounds):.2f} vs {statistics.median(b[1] for b in bare):.2f} ms)")
    return 0 if any(results.values()) else 1


COMPARED = "compared addon"

if __name__ == "__main__":
    sys.exit(main())
