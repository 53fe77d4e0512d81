"""``harness explore BASE``: search the fault space around a base scenario for a failure nobody wrote a
scenario for, shrink each one to a minimal scenario file. Exit 0 nothing found, 1 failures found
(files written), 2 bad input or the base does not run, 130 / 143 interrupted (what was found is
written). See docs/explore.md."""

from __future__ import annotations

import argparse
import os
import time

from harness.cli import CliError
from harness.commands import args as types

DEFAULT_BUDGET_S = 600.0


def budget(text: str) -> float:
    from harness.durations import parse_duration
    try:
        value = parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e}, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration > 0 like 10m, got {text!r}")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", metavar="BASE", help="a scenario file: its target, services, links and traffic "
                   "(its own faults are ignored); or a target profile: its services' explore bases drive it")
    p.add_argument("--profile", metavar="P", help="run the base scenario against this target profile (docs/profiles.md)")
    limit = p.add_mutually_exclusive_group()
    limit.add_argument("--budget", type=budget, help="wall-clock time to search, e.g. 10m (default 10m)")
    limit.add_argument("--runs", type=positive, help="number of candidates to try instead of a time budget")
    p.add_argument("--sweep", type=positive, nargs="?", const=4, default=0, metavar="TIMES",
                   help="instead of random draws, every single fault that applies at TIMES evenly spaced "
                   "start times (default 4), each for a short and a long window; no time budget unless "
                   "--budget is given (docs/explore.md)")
    p.add_argument("--seed", type=types.seed, default=0, help="the search's seed: same seed, same candidates")
    p.add_argument("-j", "--jobs", type=positive, default=1, help="runs at once (default 1)")
    p.add_argument("--time-scale", type=types.time_scale, default=1.0, help="multiply scenario durations (e.g. 0.2)")
    p.add_argument("--variant", help="target variant (passed to the target as ${target.variant})")
    p.add_argument("--repeats", type=positive, default=3,
                   help="runs of each shrink candidate; it still fails if all of them fail (default 3)")
    p.add_argument("--confirm", type=positive, default=5,
                   help="runs of each minimal scenario to measure its failure rate (default 5)")
    p.add_argument("--until", metavar="INVARIANT", action="append", default=[],
                   help="stop the search once this invariant has failed (shrunk and confirmed); repeatable")
    p.add_argument("--report-dir", type=types.report_dir, default="reports",
                   help="where the exploration's folder goes (default reports/)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")


def main(args: argparse.Namespace) -> int:
    from harness.commands import preflight
    from harness.commands.run import run_guarded
    from harness.explore.candidate import Base
    from harness.explore.progress import Progress
    from harness.explore.report import table, write_failure, write_summary
    from harness.explore.search import Explorer, ExploreError, Options
    from harness.scenario import ScenarioError

    from harness.commands.validate import kind_of

    from harness.verdict import REGISTRY

    if not os.path.isfile(args.base):
        raise CliError(f"{args.base}: no such file")
    for name in args.until:
        if name not in REGISTRY:
            raise CliError(f"--until {name}: unknown invariant (docs/scenarios.md lists them)")
    try:
        if kind_of(args.base) == "profile":
            if args.profile is not None:
                raise CliError(f"--profile: BASE {args.base} is a target profile already")
            base = Base.from_profile(args.base, args.variant)
        else:
            base = Base.load(args.base, args.variant, args.profile)
    except ScenarioError as e:
        raise CliError(str(e)) from None
    preflight.scenario(args.base, base.scenario, False)
    if not base.menu.families():
        raise CliError(f"{args.base}: nothing to break: it runs no service and declares no link or target command")
    out_dir = os.path.join(args.report_dir, f"explore-{time.strftime('%Y%m%d-%H%M%S')}-{base.scenario.name}")
    opts = Options(seed=args.seed, runs=args.runs,
                   budget_s=(args.budget if args.budget is not None or args.runs is not None or args.sweep
                             else DEFAULT_BUDGET_S),
                   jobs=args.jobs, time_scale=args.time_scale, repeats=args.repeats, confirm=args.confirm,
                   out_dir=out_dir, until=tuple(args.until), sweep=args.sweep)
    progress = Progress(quiet=args.quiet)
    explorer = Explorer(base, opts, progress, write=write_failure)
    try:
        run_guarded(explorer.explore)
    except ExploreError as e:
        raise CliError(str(e)) from None
    finally:
        progress.close()
    index = write_summary(explorer)
    print(table(explorer) + f"report: {index}")
    if explorer.interrupted:
        return 130
    return 1 if explorer.failures else 0
