"""The detection matrix: the catalogue against every variant of the reference integrations.

``examples/variants.yaml`` names each integration's variants and, for each bug variant, the
invariant that must catch it. A scenario belongs to an integration through ``target.integration``.
The contract: every scenario PASSes against ``correct`` (an INCONCLUSIVE run — a rule that never
fired, a step that never played, an invariant not exercised — is not a pass); every bug variant
fails at least one scenario, and the expected invariant is among the failing (exercised) ones.
"""

from __future__ import annotations

import asyncio
import glob
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from harness.scenario import Scenario, discover, load_scenario



@dataclass
class Variant:
    integration: str
    name: str
    caught_by: str | None = None
    bug: str = ""


@dataclass
class Cell:
    scenario: str
    variant: str
    ok: bool
    failed: list[str]
    error: str | None
    run_dir: str
    duration_s: float
    state: str = "PASS"


@dataclass
class VariantOutcome:
    variant: Variant
    cells: list[Cell] = field(default_factory=list)

    @property
    def as_expected(self) -> bool:
        if self.variant.name == "correct":
            return bool(self.cells) and all(c.ok for c in self.cells)
        return any(self.variant.caught_by in c.failed for c in self.cells)

    def pass_line(self) -> str:
        """``10/12 scenarios pass (1 INCONCLUSIVE, 1 FAIL)``"""
        others: dict[str, int] = {}
        for c in self.cells:
            if not c.ok:
                others[c.state] = others.get(c.state, 0) + 1
        more = ", ".join(f"{n} {state}" for state, n in sorted(others.items()))
        return f"{sum(c.ok for c in self.cells)}/{len(self.cells)} scenarios pass" + (f" ({more})" if more else "")

    @property
    def caught_in(self) -> list[str]:
        return [c.scenario for c in self.cells if self.variant.caught_by in c.failed]


def load_variants(path: str | None = None) -> dict[str, list[Variant]]:
    from harness import catalogue
    with open(path or catalogue.variants_file()) as f:
        data = yaml.safe_load(f) or {}
    out = {}
    for integration, spec in data.items():
        out[integration] = [Variant(integration, name, (v or {}).get("caught_by"), (v or {}).get("bug", ""))
                            for name, v in (spec.get("variants") or {}).items()]
    return out


def catalogue(paths: list[str] | None = None) -> dict[str, list[Scenario]]:
    """Scenarios per integration: the generic catalogue, where a reference integration's own version
    of a scenario (``examples/<app>/scenarios/*.yaml`` extending it, adding app-specific checks)
    replaces it for that integration."""
    out: dict[str, list[Scenario]] = {}
    from harness import catalogue
    scenarios = catalogue.scenarios_dir()
    examples = os.path.join(os.path.dirname(os.path.abspath(scenarios)), "examples")
    files = discover(paths or [scenarios, *sorted(glob.glob(os.path.join(examples, "*", "scenarios")))])
    loaded = [(f, load_scenario(f)) for f in files]
    integration = {f: sc.target.integration if sc.target else None for f, sc in loaded}
    replaced = {(integration[f], p) for f, _ in loaded for p in _extended(f)}
    for f, sc in loaded:
        if integration[f] and (integration[f], os.path.abspath(f)) not in replaced:
            out.setdefault(integration[f], []).append(sc)
    return out


def _extended(path: str) -> list[str]:
    """The catalogue scenarios an app-specific scenario (under ``examples/``) extends."""
    if os.sep + "examples" + os.sep not in os.sep + os.path.relpath(path):
        return []
    with open(path) as f:
        parents = (yaml.safe_load(f) or {}).get("extends") or []
    parents = [parents] if isinstance(parents, str) else parents
    return [os.path.abspath(os.path.join(os.path.dirname(path), p)) for p in parents if not os.path.basename(p).startswith("_")]


async def run_variant(variant: Variant, scenarios: list[Scenario], report_dir: str, time_scale: float = 1.0,
                      concurrency: int = 1, progress: Any = None) -> VariantOutcome:
    from harness.report import write_run_report
    from harness.run.runner import RunOptions, Runner

    outcome = VariantOutcome(variant)
    sem = asyncio.Semaphore(concurrency)

    async def one(sc: Scenario) -> Cell:
        async with sem:
            opts = RunOptions(time_scale=time_scale, report_dir=report_dir, variant=variant.name)
            result = await Runner(sc, opts).run()
            write_run_report(result, link_latest=False)
            failed = [r.name for r in (result.verdict.results if result.verdict else []) if not r.ok and r.exercised]
            state = result.outcome.state
            if progress is not None:
                progress.line(f"  {state} {sc.name} [{variant.name}]"
                              + (f" failed: {', '.join(failed)}" if failed else "")
                              + (f" error: {result.error}" if result.error else "")
                              + "".join(f"\n      {r}" for r in result.outcome.reasons if state == "INCONCLUSIVE"))
            return Cell(sc.name, variant.name, result.ok, failed, result.error, result.run_dir, result.duration_s,
                        state)

    applicable = [sc for sc in scenarios if not sc.applies_to or variant.name in sc.applies_to]
    outcome.cells = list(await asyncio.gather(*(one(sc) for sc in applicable)))
    return outcome


def expected_table(variants: dict[str, list[Variant]], scenarios: dict[str, list[Scenario]]) -> str:
    """The README table: generated from variants.yaml and the catalogue, never typed by hand."""
    lines = ["| integration | variant | the bug | caught by invariant | scenarios run against it |",
             "|---|---|---|---|---|"]
    for integration, vs in variants.items():
        n = len(scenarios.get(integration, []))
        for v in vs:
            caught = f"`{v.caught_by}`" if v.caught_by else "— (must pass every scenario)"
            lines.append(f"| {integration} | `{v.name}` | {v.bug or 'reference implementation'} | {caught} | {n} |")
    return "\n".join(lines)


def observed_html(outcomes: list[VariantOutcome]) -> str:
    import html
    rows = []
    for o in outcomes:
        v = o.variant
        mark = "✓" if o.as_expected else "✗"
        if v.name == "correct":
            detail = html.escape(o.pass_line())
        else:
            detail = (f"caught by <code>{html.escape(v.caught_by or '')}</code> in "
                      f"{len(o.caught_in)} scenario(s): {html.escape(', '.join(o.caught_in) or 'none')}")
        rows.append(f"<tr><td>{mark}</td><td>{html.escape(v.integration)}</td><td><code>{html.escape(v.name)}</code></td>"
                    f"<td>{html.escape(v.bug)}</td><td>{detail}</td></tr>")
    return ("<h2>Detection matrix</h2><table><tr><th></th><th>integration</th><th>variant</th><th>bug</th>"
            f"<th>observed</th></tr>{''.join(rows)}</table>")


README_START, README_END = "<!-- matrix:start -->", "<!-- matrix:end -->"


def readme_with_table(readme: str, table: str) -> str:
    start, end = readme.index(README_START) + len(README_START), readme.index(README_END)
    return readme[:start] + "\n" + table + "\n" + readme[end:]
