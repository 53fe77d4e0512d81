"""``harness validate SCENARIO…``: check files without running them. Exit 0: all valid; 2: one is
not (each problem one line on stderr: file, line, field)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help="scenario files or folders (default: ./scenarios, or the installed catalogue)")
    p.add_argument("--profile", metavar="PROFILE.yaml", help="check them against this target profile")


def main(args: argparse.Namespace) -> int:
    import sys

    from harness import catalogue
    from harness.scenario import ScenarioError, discover, load_scenario
    from harness.cli import CliError
    paths = catalogue.resolve(args.scenarios or [catalogue.scenarios_dir()])
    files = discover(paths)
    if not files:
        raise CliError(f"no scenario files in {' '.join(paths)}")
    bad = 0
    for f in files:
        try:
            sc = load_scenario(f, profile=args.profile)
            print(f"ok    {f}  ({sc.name})")
        except ScenarioError as e:
            bad += 1
            print(str(e), file=sys.stderr)
    print(f"{len(files) - bad} valid, {bad} invalid")
    return 2 if bad else 0
