"""``harness replay reports/<run-id>``: run the same scenario again with the same seed, time scale
and target, then show that the fault decisions match one-to-one — each rule's decisions in the same
order, each for a request with the same fingerprint — or say where they diverged
(``diverged at decision N: original <…>, replay <…>``, exit 1)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import Any

from harness.cli import CliError
from harness.commands import args as types


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, e.g. reports/latest")
    p.add_argument("--report-dir", type=types.report_dir, help="where the new run goes (default: beside the old one)")
    p.add_argument("-q", "--quiet", action="store_true")


@dataclass(frozen=True)
class Recorded:
    """One fault decision of a run: the ``index``-th of its decisions (from 1)."""

    index: int
    rule: str
    n: int
    fired: bool
    fingerprint: str | None  # None in journals written before decisions had one
    matched: dict[str, Any] | None

    def same(self, other: "Recorded") -> bool:
        if (self.n, self.fired) != (other.n, other.fired):
            return False
        return self.fingerprint is None or other.fingerprint is None or self.fingerprint == other.fingerprint

    def __str__(self) -> str:
        fields = " ".join(f"{k}={v!r}" if k.startswith("params.") else str(v)
                          for k, v in (self.matched or {}).items() if v is not None)
        verb = "fired" if self.fired else "not fired"
        return f"rule {self.rule} match {self.n} {verb} on {fields or '?'}" + (
            f" [{self.fingerprint}]" if self.fingerprint else "")


def decisions(run_dir: str) -> dict[str, list[Recorded]]:
    """Per rule, in order: its decisions — what replay must reproduce (match number, fired, and the
    fingerprint of the request each was made for)."""
    from harness.journal import iter_events
    out: dict[str, list[Recorded]] = {}
    index = 0
    for e in iter_events(os.path.join(run_dir, "journal.jsonl")):
        if e.kind == "decision":
            index += 1
            out.setdefault(e["rule"], []).append(Recorded(index, e["rule"], e["n"], bool(e["fired"]),
                                                          e.get("fingerprint"), e.get("matched")))
    return out


def compare(a: dict[str, list[Recorded]], b: dict[str, list[Recorded]]) -> tuple[int, int, str | None]:
    """(matching, total, the first divergence). Each rule's decisions are compared in order (the
    decisions of different rules may interleave differently in a replay without changing any of
    them); the first divergence is the one earliest in the original run."""
    total = matching = 0
    diverged: list[tuple[float, int, str]] = []
    for rule in sorted(set(a) | set(b)):
        xs, ys = a.get(rule, []), b.get(rule, [])
        for i in range(max(len(xs), len(ys))):
            total += 1
            x = xs[i] if i < len(xs) else None
            y = ys[i] if i < len(ys) else None
            if x is not None and y is not None and x.same(y):
                matching += 1
                continue
            at = x.index if x is not None else float("inf")
            shown = x.index if x is not None else y.index  # type: ignore[union-attr]
            diverged.append((at, y.index if y is not None else 0,
                             f"diverged at decision {shown}: original <{x or 'no such decision'}>, "
                             f"replay <{y or 'no such decision'}>"))
    first = min(diverged)[2] if diverged else None
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
          + f"; verdict {outcome.state} ({same}); report: {result.run_dir}/report.html")
    if first is not None:
        print(first)
        return 1  # not the same run: its verdict says nothing about the original
    return outcome.exit_code
