#!/usr/bin/env python3
"""Benchmark of `harness explore`: does it find every bug variant of the reference integrations
without the catalogue scenarios, only each integration's traffic and target?

For each integration of examples/variants.yaml — its base examples/explore/<integration>.yaml, else
its target profile (the explore bases of the services it uses) — and each of its variants, runs `harness explore BASE --variant V --budget B -j J` and reads its
explore.json. A bug variant is FOUND when a failure of the invariant that must catch it
(`caught_by`) was found and shrunk (its search stops there: `--until`); a correct variant must give
nothing in the whole budget (else FALSE ALARM). The
table: variant, found after (candidates, seconds), minimal fault steps, reproduction rate.
Writes bench/EXPLORE.md. Not a timed test: the full run takes up to budget × variants.

Options: --budget 10m, -j 2, --time-scale 1, --confirm 10, --seed 0, --only INTEGRATION[/VARIANT] (repeatable),
--bugs-only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def explore(base: str, variant: str, want: str | None, args: argparse.Namespace, out: str) -> dict:
    cmd = [sys.executable, "-m", "harness", "explore", base, "--variant", variant, "--budget", args.budget,
           "-j", str(args.jobs), "--time-scale", str(args.time_scale), "--confirm", str(args.confirm),
           "--seed", str(args.seed), "--report-dir", out, "-q"]
    if want is not None:   # a bug variant: the search ends when the invariant that must catch it failed
        cmd += ["--until", want]
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
    folders = sorted(p for p in os.listdir(out) if p.startswith("explore-"))
    with open(os.path.join(out, folders[-1], "explore.json")) as f:
        return json.load(f)


def row(integration: str, variant: str, spec: dict, data: dict) -> tuple[str, ...]:
    want = spec.get("caught_by")
    hits = [f for f in data["failures"] if want is None or f["invariant"] == want]
    baseline = data.get("fails_without_faults", {})
    if want is None:
        verdict = "ok (nothing)" if not data["failures"] else "FALSE ALARM"
        others = "; ".join(f"{f['invariant']} {f['failed']}/{f['tries']}" for f in data["failures"])
        return (integration, variant, "-", verdict, "-", "-", "-", others or "-")
    if hits:
        f = min(hits, key=lambda h: (h["tries"] == 0 or h["failed"] / h["tries"] < 0.9, len(h["faults"]),
                                     h["found_run"]))
        good = f["tries"] and f["failed"] / f["tries"] >= 0.9 and len(f["faults"]) <= 3
        return (integration, variant, want, "FOUND" if good else "FOUND (weak: rate < 9/10 or > 3 steps)",
                f"{f['found_run']} cand., {f['found_after_s']:g}s",
                str(len(f["faults"])), f"{f['failed']}/{f['tries']}", "<br>".join(f["faults"]))
    if want in baseline:
        return (integration, variant, want, "FOUND (no fault needed)", "baseline", "0", baseline[want], "-")
    found = ", ".join(sorted({f["invariant"] for f in data["failures"]})) or "-"
    return (integration, variant, want, "MISSED", "-", "-", "-", f"other failures: {found}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", default="10m")
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--confirm", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", action="append", default=[], help="INTEGRATION or INTEGRATION/VARIANT")
    p.add_argument("--bugs-only", action="store_true", help="skip the correct variants")
    p.add_argument("--out", default=os.path.join(ROOT, "reports", "bench-explore"))
    p.add_argument("--md", default=os.path.join(ROOT, "bench", "EXPLORE.md"), help="where the table goes")
    args = p.parse_args()
    with open(os.path.join(ROOT, "examples", "variants.yaml")) as f:
        catalogue = yaml.safe_load(f)
    rows = []
    started = time.time()
    for integration, entry in catalogue.items():
        # the integration's own base (examples/explore/), else its target profile: the explore bases
        # of the services it uses, driven through its roles
        base = os.path.join("examples", "explore", f"{integration}.yaml")
        if not os.path.exists(os.path.join(ROOT, base)):
            if not entry.get("profile"):
                continue
            base = os.path.join("examples", entry["profile"])
        for variant, spec in entry["variants"].items():
            if args.only and integration not in args.only and f"{integration}/{variant}" not in args.only:
                continue
            if args.bugs_only and not (spec or {}).get("caught_by"):
                continue
            out = os.path.join(args.out, integration, variant)
            os.makedirs(out, exist_ok=True)
            spec = spec or {}
            rows.append(row(integration, variant, spec, explore(base, variant, spec.get("caught_by"), args, out)))
            print(" | ".join(rows[-1]), flush=True)
    head = ("integration", "variant", "must be caught by", "result", "found after", "minimal steps",
            "reproduced", "minimal faults / notes")
    table = "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                      + ["| " + " | ".join(r) + " |" for r in rows])
    text = (f"# harness explore benchmark\n\nProduced by `python bench/explore.py` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {time.time() - started:.0f} s: budget "
            f"{args.budget} per variant, -j {args.jobs}, --time-scale {args.time_scale:g}, --confirm {args.confirm}, "
            f"seed {args.seed}{', only ' + ', '.join(args.only) if args.only else ''}; load average at the end "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs. Bases: examples/explore/, else the integration's "
            f"target profile.\n\n"
            f"{table}\n")
    with open(args.md, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
