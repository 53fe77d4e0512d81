"""What the pytest fixtures cost per test: the per-test reset of the worker's mocks vs starting fresh
mocks for every test, and the end-to-end overhead a ``captcha_mock`` test pays in a real pytest run.

    .venv/bin/python bench/fixture_reset.py [--resets 500] [--fresh 20] [--tests 1000] [--repeat 5]

Not a test; prints figures:
1. ``WorkerHost.reset()`` (what the ``harness`` fixture runs before each test), after a test that did
   typical things (rules, a ticket, a config change), and idle; also with two Toxiproxy links that
   had a toxic, a link rule and a cut (the reset then talks to the Toxiproxy server);
2. the alternative: a fresh ``HostThread`` with every mock, started and stopped per test;
3. generated suites of N and 2N tests that each take ``captcha_mock``, and of plain tests, each in one
   pytest process: the marginal time per test (2N − N) of each kind, and their difference = the
   per-test overhead of the fixture (one-time imports and the mocks' start-up cancel out). Each suite
   runs ``--repeat`` times and its median counts: one pytest process varies by more than the
   fraction of a millisecond measured here.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.host import HostThread  # noqa: E402
from harness.testing.host import WorkerHost  # noqa: E402
from harness.testing.mocks import HarnessFixture  # noqa: E402


def stats(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"median {statistics.median(ms):7.3f} ms   p99 {p99:7.3f} ms   (n={len(ms)})"


def dirty(h: HarnessFixture) -> None:
    captcha = h.mock("captcha")
    captcha.add_rule(error="InternalError", action="DescribeCaptchaResult", times=2)
    h.mock("solver").add_rule(status=503, action="res.php")
    captcha.issue_ticket()
    captcha.set_config(ticket_lifetime_s=5)


def bench_reset(resets: int, with_links: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-reset-") as d, WorkerHost(d) as wh:
        links = None
        if with_links:
            from harness.proxy.toxiproxy_server import ToxiproxyServer
            from harness.testing.worker_links import WorkerLinks
            server = ToxiproxyServer(log_path=os.path.join(d, "toxiproxy.log"))
            links = WorkerLinks(wh, server)
        try:
            idle, busy = [], []
            for _ in range(resets):
                t = time.perf_counter()
                since = wh.reset()
                idle.append(time.perf_counter() - t)
                h = HarnessFixture(wh, since)
                dirty(h)
                if links is not None:
                    a, b = links.get("integration->captcha"), links.get("integration->solver")
                    a.add_toxic("latency", latency=100)
                    b.down()
                    h.add_rule(link="integration->captcha", toxic="bandwidth", attributes={"rate": 10})
                t = time.perf_counter()
                wh.reset()
                busy.append(time.perf_counter() - t)
            label = "2 links (toxic, rule, cut)" if with_links else "mocks only"
            print(f"  reset after a busy test, {label:27} {stats(busy)}")
            if not with_links:
                print(f"  reset after an idle test, {label:26} {stats(idle)}")
        finally:
            if links is not None:
                links.stop()
                links.server.stop()


def bench_fresh(n: int) -> None:
    samples = []
    for _ in range(n):
        with tempfile.TemporaryDirectory(prefix="bench-fresh-") as d:
            t = time.perf_counter()
            with HostThread(run_dir=d):
                pass
            samples.append(time.perf_counter() - t)
    print(f"  fresh HostThread (all mocks) per test, start+stop   {stats(samples)}")


SUITE_FIXTURE = """
def test_{i}(captcha_mock):
    pass
"""
SUITE_PLAIN = """
def test_{i}():
    pass
"""


def run_suite(body: str, tests: int, d: str, name: str) -> float:
    path = os.path.join(d, f"test_{name}.py")
    with open(path, "w") as f:
        f.write("".join(body.format(i=i) for i in range(tests)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                          "-p", "no:schemathesis", "-p", "no:locust", "-p", "no:hypothesispytest", path],
                         cwd=d, env=env, capture_output=True, text=True, timeout=600)
    m = re.search(r"(\d+) passed in ([\d.]+)s", out.stdout)
    if not m or int(m.group(1)) != tests:
        raise SystemExit(f"suite {name} did not pass:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return float(m.group(2))


def bench_suite(tests: int, repeat: int) -> None:
    """Marginal cost: time of 2N tests minus time of N tests (one-time imports and start-up cancel)."""
    kinds = (("plain", SUITE_PLAIN), ("fixture", SUITE_FIXTURE))
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as d:
        runs: dict[tuple[str, int], list[float]] = {(kind, n): [] for kind, _ in kinds for n in (tests, 2 * tests)}
        for _ in range(repeat):  # interleaved, so a burst of load on the machine hits every kind alike
            for kind, body in kinds:
                for n in (tests, 2 * tests):
                    runs[kind, n].append(run_suite(body, n, d, f"{kind}{n}"))
        t = {key: statistics.median(times) for key, times in runs.items()}
    plain = (t["plain", 2 * tests] - t["plain", tests]) / tests * 1000
    fixture = (t["fixture", 2 * tests] - t["fixture", tests]) / tests * 1000
    print(f"  plain test: {plain:.2f} ms each; captcha_mock test: {fixture:.2f} ms each "
          f"(from {tests} vs {2 * tests} tests, median of {repeat} runs each; "
          f"the first captcha_mock test also starts the mocks: "
          f"{(t['fixture', tests] - t['plain', tests]) - (fixture * tests / 1000):.2f} s one-time)")
    print(f"  => per-test overhead of captcha_mock (reset + handle): {fixture - plain:.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resets", type=int, default=500)
    ap.add_argument("--fresh", type=int, default=20)
    ap.add_argument("--tests", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-links", action="store_true", help="skip the Toxiproxy part")
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("per-test reset (harness fixture):")
    bench_reset(args.resets, with_links=False)
    if not args.no_links:
        bench_reset(max(args.resets // 5, 20), with_links=True)
    print("the alternative, fresh mocks per test:")
    bench_fresh(args.fresh)
    print("end to end in pytest:")
    bench_suite(args.tests, args.repeat)


if __name__ == "__main__":
    main()
