"""``harness validate PATH…``: check files without running them. Exit 0: all valid; 2: one is
not (each problem one line on stderr: file, line, field).

Each YAML file is checked as what it is: a scenario, a target profile (docs/profiles.md), or the
detection matrix's variants file (examples/variants.yaml: its profiles exist, each ``caught_by``
names a registered invariant); other YAML is skipped with a note."""

from __future__ import annotations

import argparse
from typing import Any

SCENARIO_KEYS = ("traffic", "timeline", "expect", "extends", "profile")
PROFILE_KEYS = {"name", "description", "target", "services", "tls", "links"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="*", metavar="PATH",
                   help="scenario files or folders (default: ./scenarios, or the installed catalogue); "
                        "profiles and examples/variants.yaml among them are checked as such")
    p.add_argument("--profile", metavar="PROFILE.yaml", help="check the scenarios against this target profile")


def kind_of(path: str) -> str:
    """``scenario``, ``profile``, ``variants`` or ``other`` (unreadable YAML counts as a scenario, so
    its error is reported; ``other`` only decides for files found in a folder: a file named on the
    command line is checked as a scenario)."""
    import yaml
    try:
        with open(path, "rb") as f:
            data: Any = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return "scenario"
    if not isinstance(data, dict) or not data:
        return "other"
    if any(k in data for k in SCENARIO_KEYS):
        return "scenario"
    if "target" in data and set(data) <= PROFILE_KEYS:
        return "profile"
    if all(isinstance(v, dict) and "variants" in v for v in data.values()):
        return "variants"
    return "other"


def check(path: str, kind: str, profile: str | None) -> tuple[str | None, list[str]]:
    """(what it is, for the ok line; problems, one line each)."""
    from harness import matrix
    from harness.scenario import ScenarioError, load_scenario
    from harness.scenario.profile import load_profile
    try:
        if kind == "profile":
            return f"profile {load_profile(path)[0].name or '(unnamed)'}", []
        if kind == "variants":
            bad = matrix.problems(path)
            n = len(matrix.load_integrations(path)) if not bad else 0
            return f"variants file, {n} integrations", bad
        return load_scenario(path, profile=profile).name, []
    except ScenarioError as e:
        return None, [str(e)]


def main(args: argparse.Namespace) -> int:
    import os
    import sys

    from harness import catalogue
    from harness.cli import CliError
    from harness.scenario import discover
    paths = catalogue.resolve(args.scenarios or [catalogue.scenarios_dir()])
    files = discover(paths)
    if not files:
        raise CliError(f"no scenario files in {' '.join(paths)}")
    named = {p for p in paths if not os.path.isdir(p)}
    bad = skipped = 0
    for f in files:
        kind = kind_of(f)
        if kind == "other" and f in named:
            kind = "scenario"
        if kind == "other":
            skipped += 1
            print(f"skip  {f}  (not a scenario, target profile or variants file)")
            continue
        what, problems = check(f, kind, args.profile)
        for line in problems:
            print(line, file=sys.stderr)
        bad += bool(problems)
        if not problems:
            print(f"ok    {f}  ({what})")
    print(f"{len(files) - bad - skipped} valid, {bad} invalid" + (f", {skipped} skipped" if skipped else ""))
    return 2 if bad else 0
