"""What explore leaves behind: per distinct failure a minimal scenario (plain YAML for ``harness run``,
comments saying what was found) with the report of a failing run; the final table; ``index.html``
linking them; ``explore.json`` for machines."""

from __future__ import annotations

import html
import json
import os
import re
from typing import Any

import yaml

from harness.explore.search import Explorer, Failure, Interrupted


def scenario_name(explorer: Explorer, failure: Failure) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", f"explore-{explorer.base.scenario.name}-{failure.invariant}")


def header(explorer: Explorer, failure: Failure) -> str:
    o = explorer.opts
    shrunk = failure.shrunk
    how = (f"shrunk from {len(failure.original)} in {shrunk.steps} steps, {shrunk.checks} candidates tried"
           f"{'' if shrunk.complete else '; cut short, a smaller one may exist'}" if shrunk else "not shrunk")
    lines = [
        "Found by `harness explore`: a failure no scenario was written for.",
        f"base: {explorer.base.path}   explore seed: {o.seed}   candidate: {failure.found_run} "
        f"(after {failure.found_after_s:g} s)",
        f"FAILS: {failure.invariant} — {failure.summary}",
        f"minimal faults ({how}):",
        *(f"  - {f.describe()}" for f in failure.faults),
        f"reproduced: {failure.rate} runs at --time-scale {o.time_scale:g}"
        + ("" if failure.tries else " (not confirmed: the exploration was stopped)"),
        f"run it from the project root: harness run {failure.file} --time-scale {o.time_scale:g}",
    ]
    return "".join(f"# {line}\n" for line in lines)


def write_yaml(explorer: Explorer, failure: Failure) -> str:
    doc = explorer.base.document(failure.faults, failure.seed, scenario_name(explorer, failure))
    doc["description"] = (f"harness explore found {failure.invariant} failing under these faults "
                          f"(see the comments above)")
    with open(failure.file, "w") as f:
        f.write(header(explorer, failure))
        yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True, width=110)
    return failure.file


async def write_failure(explorer: Explorer, failure: Failure) -> None:
    """Write the minimal scenario, confirm it (as ``harness run`` loads it), keep a failing run's
    report, write the file again with the observed failure rate."""
    from harness.report import write_run_report
    from harness.scenario import load_scenario
    folder = os.path.join(explorer.opts.out_dir, "failures")
    os.makedirs(folder, exist_ok=True)
    failure.file = os.path.join(folder, f"{len(explorer.failures):02d}-{failure.invariant}.yaml")
    write_yaml(explorer, failure)
    if explorer.interrupted:
        return
    times = explorer.opts.confirm if not explorer.out_of_time() else 1
    explorer.tick(phase=f"confirming {failure.invariant} ({times} runs)")
    try:
        failure.fails, failure.tries, kept = await explorer.confirm(load_scenario(failure.file), failure.invariant,
                                                                    times)
    except Interrupted:
        explorer.interrupted = True
        return
    if kept is not None:
        write_run_report(kept, link_latest=False)
        failure.report = os.path.join(kept.run_dir, "report.html")
    write_yaml(explorer, failure)
    explorer.say(f"{failure.invariant}: minimal {len(failure.faults)} faults, fails {failure.rate} → {failure.file}")


# --- the summary -----------------------------------------------------------------------------------
def state(explorer: Explorer) -> str:
    if explorer.interrupted:
        return "INTERRUPTED"
    return "FOUND" if explorer.failures else "NOTHING FOUND"


def table(explorer: Explorer) -> str:
    spent = explorer.opts.budget_s - (explorer.time_left() or 0) if explorer.opts.budget_s else None
    tried = (f"{explorer.candidates} of {len(explorer.grid)} sweep cells" if explorer.grid is not None
             else f"{explorer.candidates} candidates")
    head = (f"{state(explorer)}: {len(explorer.failures)} distinct failures; {tried}, "
            f"{explorer.runs} runs ({explorer.errors} run errors)"
            + (f", {spent:.0f}s" if spent is not None else "")
            + (f"; stopped: {explorer.reached()} failed (--until)" if explorer.reached() else ""))
    head += "\n" + proved(explorer)
    if not explorer.failures:
        return head + "\n"
    rows = [("#", "invariant", "rate", "seen", "found at", "minimal faults", "file")]
    for n, f in enumerate(explorer.failures, 1):
        faults = [x.describe() for x in f.faults]
        rows.append((str(n), f.invariant, f.rate + (" flaky" if f.flaky else ""), str(f.seen), f"run {f.found_run}, {f.found_after_s:g}s",
                     faults[0] if faults else "-", f.file))
        rows += [("", "", "", "", "", extra, "") for extra in faults[1:]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    return head + "\n" + "\n".join(lines) + "\n"


def proved(explorer: Explorer) -> str:
    """What the candidates' runs proved, and the commonest reasons a run was not a PASS."""
    order = ("PASS", "INCONCLUSIVE", "FAIL", "ERROR")
    line = "candidates: " + ", ".join(f"{explorer.tally[s]} {s}" for s in order if explorer.tally[s])
    if explorer.tally["INCONCLUSIVE"]:
        line += "; INCONCLUSIVE because: " + "; ".join(f"{reason} ({n})" for reason, n in explorer.why.most_common(3))
    return line if explorer.candidates else "candidates: none ran"


def as_json(explorer: Explorer) -> dict[str, Any]:
    o = explorer.opts
    return {
        "base": explorer.base.path, "variant": explorer.base.variant, "seed": o.seed, "budget_s": o.budget_s,
        "runs_asked": o.runs,
        "sweep": {"times": o.sweep, "cells": len(explorer.grid)} if explorer.grid is not None else None,
        "jobs": o.jobs, "time_scale": o.time_scale, "state": state(explorer),
        "until": list(o.until), "stopped_by": explorer.reached(),
        "candidates": explorer.candidates, "runs": explorer.runs, "run_errors": explorer.errors,
        "candidate_states": dict(explorer.tally), "inconclusive_because": dict(explorer.why.most_common()),
        "not_judged": sorted(explorer.base.skip), "fails_without_faults": explorer.without_faults,
        "failures": [{"invariant": f.invariant, "summary": f.summary, "found_run": f.found_run,
                      "found_after_s": f.found_after_s, "faults": [x.describe() for x in f.faults],
                      "signature": list(f.signature[1]), "original_faults": len(f.original),
                      "shrink_steps": f.shrunk.steps if f.shrunk else 0,
                      "shrink_complete": f.shrunk.complete if f.shrunk else False,
                      "failed": f.fails, "tries": f.tries, "flaky": f.flaky, "seen": f.seen, "file": f.file,
                      "report": f.report}
                     for f in explorer.failures],
    }


def page(explorer: Explorer) -> str:
    data = as_json(explorer)
    out_dir = explorer.opts.out_dir
    e = html.escape

    def link(path: str | None, text: str) -> str:
        return f'<a href="{e(os.path.relpath(path, out_dir))}">{e(text)}</a>' if path else "-"

    rows = "".join(
        f"<tr><td>{n}</td><td><b>{e(f['invariant'])}</b><br><small>{e(f['summary'])}</small></td>"
        f"<td>{'<br>'.join(e(x) for x in f['faults'])}</td><td>{f['failed']}/{f['tries']}{' flaky' if f['flaky'] else ''}</td>"
        f"<td>{f['seen']}</td><td>run {f['found_run']}, {f['found_after_s']:g}s</td>"
        f"<td>{link(f['file'], os.path.basename(f['file']))}</td><td>{link(f['report'], 'report')}</td></tr>"
        for n, f in enumerate(data["failures"], 1))
    facts = (f"base <code>{e(data['base'])}</code>" + (f", variant <code>{e(data['variant'])}</code>"
                                                        if data["variant"] else "")
             + (f", sweep at {data['sweep']['times']} start times ({data['sweep']['cells']} cells)"
                if data["sweep"] else "")
             + f", seed {data['seed']}, {data['candidates']} candidates, {data['runs']} runs "
             f"({data['run_errors']} run errors), -j {data['jobs']}, --time-scale {data['time_scale']:g}")
    skipped = (f"<p>Not judged (they fail without any fault): {e(', '.join(data['not_judged']))}</p>"
               if data["not_judged"] else "")
    body = (f"<table><tr><th>#</th><th>invariant</th><th>minimal faults</th><th>failure rate</th><th>seen</th>"
            f"<th>found at</th><th>scenario</th><th>report</th></tr>{rows}</table>" if rows
            else "<p>No failure found within the budget.</p>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>harness explore</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}"
            "</style></head><body>"
            f"<h1>harness explore: {e(data['state'])}</h1><p>{facts}</p><p>{e(proved(explorer))}</p>{skipped}{body}"
            "</body></html>\n")


def write_summary(explorer: Explorer) -> str:
    out_dir = explorer.opts.out_dir
    with open(os.path.join(out_dir, "explore.json"), "w") as f:
        json.dump(as_json(explorer), f, indent=1)
    path = os.path.join(out_dir, "index.html")
    with open(path, "w") as f:
        f.write(page(explorer))
    return path
