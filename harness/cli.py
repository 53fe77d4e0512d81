"""``harness`` command line. Each subcommand lives in its own module with ``add_arguments`` and ``main``."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help); modules are imported only when their command runs
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("harness.serve", "start the service mocks and the control API; print one JSON line of URLs"),
    "run": ("harness.commands.run", "run scenarios; exit 0 only if every invariant held"),
    "replay": ("harness.commands.replay", "re-run a finished run with the same seed and fault decisions"),
    "validate": ("harness.commands.validate", "check scenario files without running them"),
    "list": ("harness.commands.listing", "list the scenario catalogue with tags"),
    "schema": ("harness.commands.schema", "print the JSON Schema of scenario files"),
    "demo": ("harness.commands.demo", "run the catalogue against the reference integrations and their bugs"),
    "load": ("harness.commands.load", "scenario traffic through locust, faults on schedule; verdict at the end"),
    "init": ("harness.commands.init", "a starter in your project (--service: target, three scenarios, conftest.py) or a target profile (--profile)"),
    "toxiproxy": ("harness.commands.toxiproxy", "where the Toxiproxy server is; `install` builds it into the user cache"),
    "explore": ("harness.commands.explore", "search the fault space for a failure no scenario covers; shrink it to one"),
}


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``harness run: argument --seed: …``), exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Chaos and resilience test harness")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(importlib.import_module(args._module).main(args) or 0)
    except CliError as e:
        print(f"harness {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `harness schema | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
