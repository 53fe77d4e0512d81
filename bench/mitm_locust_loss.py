#!/usr/bin/env python3
"""Journal loss through the mitmproxy addon under a real locust load: `harness load
bench/mitm_locust.yaml -u USERS -t SECONDS` (locust users log in to the reference captcha backend;
its every DescribeCaptchaResult call goes through mitmdump and the harness addon), then the run's
journal is read: every call the captcha mock received came through the proxy, so each must have
its `proxy.flow` event — one per mock `request`, none missing.

    .venv/bin/python bench/mitm_locust_loss.py [--users 300] [--seconds 60] [--wait 0.5:1.5]

Not a test: it prints the figures (and the load's own verdict line).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from harness.journal import read_events  # noqa: E402

LINK = "integration->captcha"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--wait", default="0.5:1.5")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "harness", "load", os.path.join(ROOT, "bench", "mitm_locust.yaml"),
               "-u", str(args.users), "-r", str(max(1, args.users // 10)), "-t", f"{args.seconds}s",
               "--wait", args.wait, "--report-dir", out, "-q"]
        started = time.monotonic()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - started
        print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-500:])
        events = list(read_events(os.path.join(out, "latest", "journal.jsonl")))
    kinds = collections.Counter(e.kind for e in events)
    at_mock = [e for e in events if e.kind == "request" and e.service == "captcha"]
    flows = [e for e in events if e.kind == "proxy.flow" and e.get("link") == LINK]
    drivers = [e for e in events if e.kind == "driver"]
    answered = sum(1 for e in drivers if e.get("status") is not None)
    print(f"{args.users} locust users for {args.seconds} s ({wall:.0f} s wall): {len(drivers)} logins "
          f"({answered} answered), {len(at_mock)} DescribeCaptchaResult calls at the mock, "
          f"{len(flows)} proxy.flow events on {LINK}")
    missing = len(at_mock) - len(flows)
    print(f"journal loss: {max(missing, 0)} calls without their proxy.flow event"
          + (f" ({-missing} flows more than calls: the proxy answered some itself)" if missing < 0 else ""))
    print("event kinds:", dict(kinds.most_common(8)))
    return 0 if missing <= 0 and at_mock else 1


if __name__ == "__main__":
    sys.exit(main())
