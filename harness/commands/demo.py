"""``harness demo``: the scenario catalogue against the bundled reference integrations — the
correct variants and their bug variants — with the verdict table and the detection matrix in
``reports/latest/report.html``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report-dir", default="reports")
    p.add_argument("--integration", action="append", default=[], help="only this integration (repeatable)")
    p.add_argument("--variant", action="append", default=[], help="only this variant (repeatable)")
    p.add_argument("--concurrency", type=int, default=3, help="scenario runs at once (default 3)")
    p.add_argument("--write-readme", action="store_true", help="regenerate the README matrix table and exit")


def main(args: argparse.Namespace) -> int:
    from harness import matrix
    from harness.commands.run import run_guarded
    from harness.report import write_suite_report
    from harness.run.progress import Progress

    from harness import catalogue
    from harness.cli import CliError
    from harness.scenario import ScenarioError
    path = catalogue.variants_file()
    bad = matrix.problems(path)
    if bad:
        raise CliError(bad[0] + (f" (and {len(bad) - 1} more: harness validate {path})" if len(bad) > 1 else ""))
    try:
        integrations = matrix.load_integrations(path)
        scenarios = matrix.catalogue(integrations)
    except (matrix.MatrixError, ScenarioError) as e:
        raise CliError(str(e)) from None
    variants = {name: i.variants for name, i in integrations.items()}
    if args.write_readme:
        with open("README.md") as f:
            readme = f.read()
        with open("README.md", "w") as f:
            f.write(matrix.readme_with_table(readme, matrix.expected_table(variants, scenarios)))
        print("README.md matrix table regenerated")
        return 0
    progress = Progress()
    suite_dir = os.path.join(args.report_dir, f"{time.strftime('%Y%m%d-%H%M%S')}-demo")
    started = time.monotonic()
    chosen = [v for vs in variants.values() for v in vs
              if (not args.integration or v.integration in args.integration)
              and (not args.variant or v.name in args.variant)]

    outcomes: list[Any] = []
    interrupted: list[str] = []

    async def all_variants() -> None:
        # Ctrl-C (or SIGTERM) ends the variant in flight; the variants done before it are reported
        for v in chosen:
            progress.line(f"[bold]▶ {v.integration} / {v.name}[/bold] ({len(scenarios.get(v.integration, []))} scenarios)")
            try:
                outcomes.append(await matrix.run_variant(v, scenarios.get(v.integration, []), suite_dir,
                                                         concurrency=args.concurrency, progress=progress))
            except asyncio.CancelledError as e:
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                interrupted.append(f"{e.args[0] if e.args else 'SIGINT'} during {v.integration} / {v.name}")
                return

    run_guarded(all_variants)
    summaries = []
    for o in outcomes:
        for c in o.cells:
            with open(os.path.join(c.run_dir, "summary.json")) as f:
                s = json.load(f)
            s["href"] = os.path.relpath(os.path.join(c.run_dir, "report.html"), suite_dir)
            s["expected"] = True if o.variant.name == "correct" else None  # a bug variant may pass some
            if o.variant.name != "correct":
                caught = c.scenario in o.caught_in
                s["expectation"] = (f"bug: {o.variant.caught_by} must catch it in some scenario; "
                                    + ("caught here" if caught else "not here"))
            summaries.append(s)
    elapsed = time.monotonic() - started
    expected = sum(o.as_expected for o in outcomes)
    stopped = f"; INTERRUPTED ({interrupted[0]}): {len(outcomes)} of {len(chosen)} variants ran" if interrupted else ""
    write_suite_report(suite_dir, f"demo: catalogue × reference integrations ({elapsed:.0f} s)", summaries,
                       matrix.observed_html(outcomes), {"elapsed_s": round(elapsed, 1),
                                                        **({"state": "INTERRUPTED"} if interrupted else {})},
                       headline=(expected == len(outcomes) and not interrupted,
                                 f"{expected}/{len(outcomes)} variants as expected{stopped}"))
    print()
    width = max([len("integration"), *(len(o.variant.integration) for o in outcomes)])
    print(f"{'integration':<{width}} {'variant':<22} {'expected':<10} result")
    good = 0
    for o in outcomes:
        v = o.variant
        if v.name == "correct":
            result = o.pass_line()
        else:
            result = f"caught by {v.caught_by} in {len(o.caught_in)}/{len(o.cells)}: {', '.join(o.caught_in) or '-'}"
        good += o.as_expected
        print(f"{v.integration:<{width}} {v.name:<22} {'OK' if o.as_expected else 'MISSED':<10} {result}")
    print(f"\n{good}/{len(outcomes)} variants as expected in {elapsed:.0f} s{stopped}; report: "
          f"{os.path.join(args.report_dir, 'latest', 'report.html')}")
    if interrupted:
        return 130
    return 0 if good == len(outcomes) else 1
