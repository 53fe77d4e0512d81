"""Journal loss through the mitmproxy addon under load: N concurrent clients (default 300) send requests
through mitmdump for S seconds (default 60); then mitmdump is stopped (the addon sends what it still
holds) and every request a client got an answer to must have its ``proxy.flow`` event in the journal.

    .venv/bin/python bench/mitm_journal_loss.py [--clients 300] [--seconds 60] [--addon FILE]

Not a test: it prints the figures. Closed loop: each client sends its next request when it has the
answer to the last one, over its own keep-alive connection (a request that takes longer than
``--timeout`` counts as failed). Each request carries a unique query (``?c=<client>&i=<n>``), so the
answered requests and the journaled flows are compared one by one, not only counted. The clients run
in a child process, the mocks and the control API in this one (as in a run), mitmdump in its own.
``--addon`` runs another addon file (e.g. an older version) for a before / after comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time

import aiohttp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.host import HostThread  # noqa: E402
from harness.journal import read_events  # noqa: E402
from harness.proxy.mitm import ADDON, MitmProxy, MitmRoute  # noqa: E402
from proxy_latency import BenchMock, cpu_s, pct  # noqa: E402

LINK = "integration->bench"


async def _load(url: str, clients: int, seconds: float, timeout: float) -> dict:
    answered: list[str] = []
    latencies: list[float] = []
    failed = 0
    stop_at = time.monotonic() + seconds

    async def client(c: int) -> None:
        nonlocal failed
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as s:
            i = 0
            while time.monotonic() < stop_at:
                path = f"/ping?c={c}&i={i}"
                i += 1
                t0 = time.perf_counter()
                try:
                    async with s.get(url + path) as r:
                        await r.read()
                        if r.status != 200:
                            raise RuntimeError(r.status)
                except Exception:
                    failed += 1
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                answered.append(path)

    await asyncio.gather(*(client(c) for c in range(clients)))
    return {"answered": answered, "failed": failed, "latencies": latencies}


def _run_load(url: str, clients: int, seconds: float, timeout: float, out: "multiprocessing.Queue") -> None:
    out.put(asyncio.run(_load(url, clients, seconds, timeout)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=300, help="concurrent clients (default 300)")
    ap.add_argument("--seconds", type=float, default=60.0, help="how long they send (default 60)")
    ap.add_argument("--timeout", type=float, default=10.0, help="a request's time limit in seconds (default 10)")
    ap.add_argument("--addon", default=str(ADDON), help="the addon file (default: this checkout's)")
    ap.add_argument("--direct", action="store_true",
                    help="send to the mock itself (the ceiling of this machine; nothing is journaled by a proxy)")
    args = ap.parse_args()
    run_dir = tempfile.mkdtemp(prefix="bench-mitm-loss-")
    with HostThread(services={"bench": {}}, service_classes={"bench": BenchMock}, run_dir=run_dir) as ht:
        mitm = MitmProxy([MitmRoute(LINK, "bench", ht.host.urls["bench"])], ht.host.urls["control"],
                         run_dir=run_dir, script=args.addon)
        try:
            url = ht.host.urls["bench"] if args.direct else mitm.start()[LINK]
            pids = [mitm.process.pid] if mitm.process is not None else []
            mark = ht.host.journal.seq
            queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
            proc = multiprocessing.get_context("spawn").Process(
                target=_run_load, args=(url, args.clients, args.seconds, args.timeout, queue))
            c0, t0 = cpu_s(pids), time.monotonic()
            proc.start()
            result = queue.get()
            proc.join()
            took, cpu = time.monotonic() - t0, cpu_s(pids) - c0
            at_end = _flows(ht, mark)
        finally:
            t_stop = time.monotonic()
            mitm.stop()
            stop_s = time.monotonic() - t_stop
        flows = _flows(ht, mark)
    answered, lat = result["answered"], result["latencies"]
    journaled = {f["path"] for f in flows if f.get("status") == 200}
    missing = [] if args.direct else [p for p in answered if p not in journaled]
    load = os.getloadavg()[0]
    print(f"mitm journal loss: {args.clients} clients x {args.seconds:g} s through the addon "
          f"({os.path.relpath(args.addon)}), load average {load:.2f} on {os.cpu_count()} CPUs")
    print(f"requests answered        {len(answered):>8}  ({len(answered) / took:.0f}/s; "
          f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms)" if lat else "requests answered        0")
    print(f"requests failed          {result['failed']:>8}")
    print(f"proxy.flow events        {len(flows):>8}  ({len(at_end)} when the clients stopped; "
          f"mitmdump stopped in {stop_s:.1f} s)")
    print(f"answered, not journaled  {len(missing):>8}" + (f"  e.g. {missing[:3]}" if missing else ""))
    print(f"mitmdump CPU             {cpu / took * 100:>7.0f}%  of one core "
          f"({cpu * 1000 / max(1, len(answered) + result['failed']):.2f} ms per request)")
    return 1 if missing or not answered else 0


def _flows(ht: HostThread, since: int) -> list:
    return [e for e in read_events(ht.host.journal.read_since(since)) if e.kind == "proxy.flow"]


if __name__ == "__main__":
    sys.exit(main())
