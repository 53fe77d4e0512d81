"""``harness load SCENARIO``: the scenario's traffic through locust while its timeline injects faults;
the invariants' verdict at the end (exit codes as `harness run`: 0 PASS, 1 FAIL, 2 run error,
3 INCONCLUSIVE, 130 / 143 INTERRUPTED when a signal stops it early). Locust options that have no flag here go after ``--``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from harness.cli import CliError
from harness.commands import args as types

MIN_RUN_TIME_S = 10.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", metavar="SCENARIO", help="a scenario file; locust options with no flag here may "
                   "follow it (after --, or directly: harness load s.yaml -u 50 --stop-timeout 5)")
    p.add_argument("-u", "--users", type=int, default=10, help="peak number of locust users (default 10)")
    p.add_argument("-r", "--spawn-rate", type=float, help="users started per second (default: all in 1 s)")
    p.add_argument("-t", "--run-time", help="e.g. 30s, 2m (default: the scenario's timeline plus 2 s, at "
                   f"least {MIN_RUN_TIME_S:g} s)")
    p.add_argument("--wait", type=types.wait_range, default="0.5:1.5", metavar="MIN[:MAX]",
                   help="seconds each user waits between its requests (default 0.5:1.5; 0 = none)")
    p.add_argument("--ui", action="store_true", help="locust's web UI instead of a headless run")
    p.add_argument("--web-port", type=types.port, help="web UI port (locust's default 8089)")
    p.add_argument("--master", action="store_true", help="locust master: runs the stage, workers send the load")
    p.add_argument("--worker", action="store_true", help="locust worker of a master started with --master")
    p.add_argument("--master-host", help="(worker) the master's address (default 127.0.0.1)")
    p.add_argument("--master-port", type=types.port, help="(worker) the master's port (default 5557)")
    p.add_argument("--master-bind-host", default="127.0.0.1", help="(master) interface to bind (default 127.0.0.1)")
    p.add_argument("--master-bind-port", type=types.port, help="(master) port to bind (default 5557)")
    p.add_argument("--expect-workers", type=int, help="(master, headless) workers to wait for before starting")
    p.add_argument("--seed", type=types.seed, help="override the scenario's seed")
    p.add_argument("--report-dir", type=types.report_dir, default="reports",
                   help="where the run folder goes (default reports/)")
    p.add_argument("--target", metavar="URL", help="use this running target instead of starting one")
    p.add_argument("--variant", help="target variant (passed to the target as ${target.variant})")
    p.add_argument("--profile", metavar="PROFILE.yaml", help="run against this target profile (docs/profiles.md)")
    p.add_argument("--time-scale", type=types.time_scale, default=1.0, help="multiply scenario durations (e.g. 0.1)")
    p.add_argument("--snapshot", metavar="PATH", help="GET this target path after the load (e.g. /status) and "
                   "keep the answer in the run folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no timeline lines from the stage")
    _pass_through(p)


def _pass_through(p: argparse.ArgumentParser) -> None:
    """Whatever this parser does not know (and everything after ``--``) is for locust: ``locust_args``."""
    parse = p.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        args = list(sys.argv[1:] if args is None else args)
        extra: list[str] = []
        if "--" in args:
            cut = args.index("--")
            args, extra = args[:cut], args[cut + 1:]
        ns, rest = parse(args, namespace)
        ns.locust_args = rest + extra
        return ns, []

    p.parse_known_args = parse_known_args  # type: ignore[method-assign]


def default_run_time(scenario: Any, time_scale: float) -> float:
    ends = [0.0]
    ends += [s.at + s.delay + 2.0 for s in scenario.timeline if s.at is not None]
    ends += [f.start + f.duration for f in scenario.traffic if f.duration is not None]
    return max(MIN_RUN_TIME_S, max(ends) * time_scale)


def locustfile_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "load", "locustfile.py")


def build_argv(args: argparse.Namespace, scenario: Any, run_dir: str | None) -> list[str]:
    argv = [sys.executable, "-m", "locust", "-f", os.path.normpath(locustfile_path())]
    if args.worker:
        argv.append("--worker")
        if args.master_host:
            argv += ["--master-host", args.master_host]
        if args.master_port:
            argv += ["--master-port", str(args.master_port)]
        return argv + list(args.locust_args)
    if not args.ui:
        argv.append("--headless")
    else:
        argv += ["--web-host", "127.0.0.1"] + (["--web-port", str(args.web_port)] if args.web_port else [])
    if args.master:
        argv.append("--master")
        for flag, value in (("--master-bind-host", args.master_bind_host), ("--master-bind-port", args.master_bind_port),
                            ("--expect-workers", args.expect_workers)):
            if value is not None:
                argv += [flag, str(value)]
    users = max(1, args.users)
    run_time = args.run_time or f"{default_run_time(scenario, args.time_scale):g}s"
    argv += ["--users", str(users), "--spawn-rate", f"{args.spawn_rate or users:g}", "--run-time", run_time]
    if run_dir:
        argv += ["--html", os.path.join(run_dir, "locust.html"), "--csv", os.path.join(run_dir, "locust")]
    return argv + list(args.locust_args)


def main(args: argparse.Namespace) -> int:
    from harness.run.runner import new_run_id
    from harness.scenario import ScenarioError, load_scenario

    if args.master and args.worker:
        raise CliError("give --master or --worker, not both")
    if not os.path.isfile(args.scenario):
        raise CliError(f"{args.scenario}: no such file")
    try:
        scenario = load_scenario(args.scenario, profile=args.profile)
    except ScenarioError as e:
        raise CliError(str(e)) from None
    if not scenario.traffic:
        raise CliError(f"{args.scenario}: no traffic flows to turn into locust users")
    if not args.worker:  # the master (or a lone locust) runs the stage: mocks, links, target
        from harness.commands import preflight
        preflight.scenario(args.scenario, scenario, target_given=args.target is not None)
    options: dict[str, Any] = {"scenario": os.path.abspath(args.scenario), "seed": args.seed,
                               "profile": os.path.abspath(args.profile) if args.profile else None,
                               "time_scale": args.time_scale, "wait": args.wait}
    run_dir = None
    if not args.worker:
        run_id = new_run_id(scenario.name)
        run_dir = os.path.abspath(os.path.join(args.report_dir, run_id))
        options.update(run_id=run_id, report_dir=os.path.abspath(args.report_dir), variant=args.variant,
                       target_url=args.target, snapshot=args.snapshot, quiet=args.quiet)
    argv = build_argv(args, scenario, run_dir)
    env = {**os.environ, "HARNESS_LOAD_OPTIONS": json.dumps(options)}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)  # locust owns the process from here (signals, exit code)
    return 2  # not reached
