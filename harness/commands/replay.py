"""``harness replay reports/<run-id>``: run the same scenario again with the same seed, time scale
and target, then show that the fault decisions match one-to-one."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from harness.cli import CliError
from harness.commands import args as types


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, e.g. reports/latest")
    p.add_argument("--report-dir", type=types.report_dir, help="where the new run goes (default: beside the old one)")
    p.add_argument("-q", "--quiet", action="store_true")


def decisions(run_dir: str) -> dict[str, list[tuple[int, bool]]]:
    """Per rule: the sequence of (match number, fired) — what replay must reproduce."""
    from harness.journal import iter_events
    out: dict[str, list[tuple[int, bool]]] = {}
    for e in iter_events(os.path.join(run_dir, "journal.jsonl")):
        if e.kind == "decision":
            out.setdefault(e["rule"], []).append((e["n"], bool(e["fired"])))
    return out


def compare(a: dict[str, list[tuple[int, bool]]], b: dict[str, list[tuple[int, bool]]]) -> tuple[int, int, str | None]:
    """(matching, total, first difference)."""
    total = matching = 0
    first = None
    for rule in sorted(set(a) | set(b)):
        xs, ys = a.get(rule, []), b.get(rule, [])
        for i in range(max(len(xs), len(ys))):
            total += 1
            x = xs[i] if i < len(xs) else None
            y = ys[i] if i < len(ys) else None
            if x == y:
                matching += 1
            elif first is None:
                first = f"rule {rule} match {i + 1}: original {x}, replay {y}"
    return matching, total, first


def load_run(run_dir: str) -> tuple[Any, dict[str, Any]]:
    from harness.scenario import ScenarioError, load_scenario_data
    try:
        with open(os.path.join(run_dir, "run.json")) as f:
            meta = json.load(f)
        with open(os.path.join(run_dir, "scenario.json")) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise CliError(f"{run_dir}: not a run folder (run.json / scenario.json): {e}") from None
    try:
        return load_scenario_data(data, os.path.join(run_dir, "scenario.json")), meta
    except ScenarioError as e:
        raise CliError(str(e)) from None


def original_summary(run_dir: str) -> dict[str, Any]:
    """The run's summary.json; a run without one, or an interrupted run, has no verdict to replay."""
    try:
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
    except OSError:
        raise CliError(f"{run_dir}: no summary.json (the run never finished writing its report); "
                       "nothing to compare a replay with") from None
    except ValueError as e:
        raise CliError(f"{run_dir}/summary.json: not JSON: {e}") from None
    if summary.get("state") == "INTERRUPTED":
        raise CliError(f"{run_dir}: the run was interrupted ({summary.get('interrupted_by') or 'signal'}); "
                       "its decisions are incomplete, so a replay cannot be compared with it") from None
    return summary


def main(args: argparse.Namespace) -> int:
    from harness.commands.run import run_guarded, run_many
    from harness.run.progress import Progress
    from harness.run.runner import RunOptions

    from harness.commands import preflight
    run_dir = os.path.realpath(args.run_dir)
    scenario, meta = load_run(run_dir)
    before = original_summary(run_dir)
    preflight.scenario(os.path.join(run_dir, "scenario.json"), scenario, target_given=bool(meta.get("target_url")))
    progress = Progress(quiet=args.quiet)
    opts = RunOptions(seed=meta["seed"], time_scale=meta.get("time_scale", 1.0),
                      report_dir=args.report_dir or os.path.dirname(run_dir), target_url=meta.get("target_url"),
                      variant=meta.get("variant"), progress=progress)
    (result,) = run_guarded(lambda: run_many([scenario], lambda _sc: opts, progress))
    matching, total, first = compare(decisions(run_dir), decisions(result.run_dir))
    outcome = result.outcome
    was = before.get("state") or ("PASS" if before.get("ok") else "FAIL")
    same = "same as the original" if was == outcome.state else f"DIFFERENT from the original {was}"
    print(f"replay of {meta['run_id']}: decisions {matching}/{total} identical"
          + (f" (first difference: {first})" if first else "")
          + f"; verdict {outcome.state} ({same}); report: {result.run_dir}/report.html")
    return outcome.exit_code
