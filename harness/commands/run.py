"""``harness run SCENARIO…``: run scenarios, write reports. Exit 0 PASS, 1 FAIL, 2 bad input or run
error, 3 INCONCLUSIVE, 130 / 143 INTERRUPTED by SIGINT / SIGTERM (the report is still written)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import signal
import time
from typing import Any

from harness import loops
from harness.cli import CliError
from harness.commands import args as types


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario files or folders")
    p.add_argument("--seed", type=types.seed, help="override every scenario's seed")
    p.add_argument("--report-dir", type=types.report_dir, default="reports",
                   help="where run folders go (default reports/)")
    p.add_argument("--target", metavar="URL", help="use this running target instead of starting one")
    p.add_argument("--variant", help="target variant (passed to the target as ${target.variant}; \"\" is one too)")
    p.add_argument("--profile", metavar="PROFILE.yaml", help="run against this target profile (docs/profiles.md) "
                   "instead of each scenario's target")
    p.add_argument("--time-scale", type=types.time_scale, default=1.0, help="multiply scenario durations (e.g. 0.1)")
    p.add_argument("--tag", action="append", default=[], help="only scenarios with this tag (repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the final verdict line")


def load_all(paths: list[str], tags: list[str] | None = None, target_given: bool = False,
             check_programs: bool = True, profile: str | None = None) -> list[Any]:
    """Scenarios under ``paths`` (the catalogue's when not found here), those with one of ``tags``,
    with ``profile``'s target and requests when given; ``check_programs``: the programs each one
    starts must be installed (not for listing)."""
    from harness import catalogue
    from harness.commands import preflight
    from harness.scenario import ScenarioError, discover, load_scenario
    files = discover(catalogue.resolve(paths))
    if not files:
        raise CliError(f"no scenario files in {' '.join(paths)}")
    scenarios = []
    for f in files:
        if not os.path.exists(f):
            raise CliError(f"{f}: no such file")
        try:
            sc = load_scenario(f, profile=profile)
        except ScenarioError as e:
            raise CliError(str(e)) from None
        if tags and not set(tags) & set(sc.tags):
            continue
        if check_programs:
            preflight.scenario(f, sc, target_given)
        scenarios.append(sc)
    return scenarios


async def run_many(scenarios: list[Any], opts_for: Any, progress: Any) -> list[Any]:
    from harness.report import write_run_report
    from harness.run.runner import Runner
    results = []
    for sc in scenarios:
        opts = opts_for(sc)
        progress.start(sc.name, opts.variant)
        result = await Runner(sc, opts).run()
        write_run_report(result)
        progress.result(result)
        results.append(result)
        if result.interrupted_by:
            break  # the scenarios after it never ran
    return results


def run_guarded(coro_fn: Any) -> Any:
    """asyncio.run with SIGINT and SIGTERM cancelling the main task with the signal's name as the
    message (a ``Runner`` turns it into an INTERRUPTED result): the run's cleanup always happens."""
    from harness.supervisor import stop_all

    async def main() -> Any:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel, sig.name)
        try:
            return await coro_fn()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    try:
        return loops.run(main())
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        stop_all()


def main(args: argparse.Namespace) -> int:
    from harness.report import write_suite_report
    from harness.report.write import run_summary
    from harness.run.progress import Progress
    from harness.run.runner import RunOptions
    from harness.supervisor import cgroup_notice
    from harness.verdict.outcome import SEVERITY

    scenarios = load_all(args.scenarios, args.tag, target_given=args.target is not None, profile=args.profile)
    if not scenarios:
        raise CliError("no scenario matches the given tags")
    progress = Progress(quiet=args.quiet)
    notice = cgroup_notice()
    if notice:
        print(f"note: {notice}", file=sys.stderr)
    multi = len(scenarios) > 1
    suite_dir = os.path.join(args.report_dir, f"{time.strftime('%Y%m%d-%H%M%S')}-suite") if multi else None

    def opts_for(sc: Any) -> RunOptions:
        return RunOptions(seed=args.seed, time_scale=args.time_scale, report_dir=suite_dir or args.report_dir,
                          target_url=args.target, variant=args.variant, progress=progress)

    results = run_guarded(lambda: run_many(scenarios, opts_for, progress))
    if multi:
        summaries = [{**run_summary(r), "href": f"{r.run_id}/report.html"} for r in results]
        write_suite_report(suite_dir, f"{len(results)} scenarios", summaries)
    passed = sum(r.ok for r in results)
    where = suite_dir or results[0].run_dir
    worst = max((r.outcome for r in results), key=lambda o: SEVERITY.index(o.state))
    skipped = f" ({len(scenarios) - len(results)} not run)" if len(results) < len(scenarios) else ""
    print(f"{worst.state}: {passed}/{len(results)} scenarios passed{skipped}; "
          f"report: {os.path.join(where, 'report.html')}")
    return worst.exit_code
