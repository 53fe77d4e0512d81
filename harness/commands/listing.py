"""``harness list [DIR]``: the scenario catalogue with tags."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="DIR",
                   help="default: ./scenarios, or the catalogue installed with the harness")
    p.add_argument("--tag", action="append", default=[], help="only scenarios with this tag")


def main(args: argparse.Namespace) -> int:
    from harness import catalogue
    from harness.commands.run import load_all
    paths = args.paths or [catalogue.scenarios_dir()]
    scenarios = load_all(paths, args.tag, check_programs=False)
    width = max((len(s.name) for s in scenarios), default=10)
    for s in scenarios:
        desc = s.description.strip().splitlines()[0] if s.description.strip() else ""
        print(f"{s.name:<{width}}  [{', '.join(s.tags)}]  {desc}")
    print(f"{len(scenarios)} scenarios in {' '.join(catalogue.resolve(paths))}")
    return 0
