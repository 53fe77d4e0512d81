"""The detection matrix: the catalogue against every variant of the reference integrations.

``examples/variants.yaml`` names each integration, its target profile, the catalogue folders run
against it and its variants; for each bug variant, the invariant that must catch it:

    node_login:
      description: ...
      profile: node_login/profile.yaml     # relative to variants.yaml
      catalogue: [captcha]                 # folders (or files) under scenarios/ (beside examples/)
      variants:
        correct: {}
        fail_closed_on_busy: {caught_by: verification_fail_open, bug: "..."}

An integration's scenarios are the catalogue entries loaded with its profile (as ``harness run
scenarios/captcha --profile P``), where the app's own version of a scenario
(``<profile folder>/scenarios/*.yaml``, extending the generic one with app-specific checks) replaces
it; a catalogue scenario that names a profile in its own file is written for that integration and
runs only against it. The contract: every scenario PASSes against ``correct`` (an INCONCLUSIVE run — a rule that never
fired, a step that never played, an invariant not exercised — is not a pass); every bug variant
fails at least one scenario, and the expected invariant is among the failing (exercised) ones.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from harness.scenario import Scenario, discover, load_scenario


class MatrixError(ValueError):
    """examples/variants.yaml is malformed (one line: file, integration, field)."""


@dataclass
class Variant:
    integration: str
    name: str
    caught_by: str | None = None
    bug: str = ""


@dataclass
class Integration:
    name: str
    profile: str                      # absolute path of its target profile
    catalogue: list[str]              # folders / files under scenarios/
    variants: list[Variant]
    description: str = ""
    scenarios: str = "scenarios"      # the catalogue root: scenarios/ beside the folder of variants.yaml

    @property
    def catalogue_paths(self) -> list[str]:
        return [os.path.join(self.scenarios, entry) for entry in self.catalogue]

    @property
    def own_scenarios(self) -> str:
        """``examples/<app>/scenarios``: the app's own versions of catalogue scenarios."""
        return os.path.join(os.path.dirname(self.profile), "scenarios")


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


def load_integrations(path: str | None = None) -> dict[str, Integration]:
    """The integrations of ``path`` (default: the catalogue's examples/variants.yaml)."""
    from harness import catalogue
    path = path or catalogue.variants_file()
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise MatrixError(f"{path}: cannot read: {e}") from None
    if not isinstance(data, dict):
        raise MatrixError(f"{path}: expected a mapping of integrations")
    return {name: _integration(path, name, spec) for name, spec in data.items()}


def _integration(path: str, name: str, spec: Any) -> Integration:
    here = f"{path}: {name}"
    if not isinstance(spec, dict):
        raise MatrixError(f"{here}: expected a mapping with profile, catalogue, variants")
    unknown = set(spec) - {"description", "profile", "catalogue", "variants"}
    if unknown:
        raise MatrixError(f"{here}: unknown key {sorted(unknown)[0]} (known: description, profile, catalogue, variants)")
    if not isinstance(spec.get("profile"), str):
        raise MatrixError(f"{here}.profile: expected the path of its target profile (relative to {path})")
    entries = spec.get("catalogue") or []
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise MatrixError(f"{here}.catalogue: expected a list of folders under scenarios/")
    variants = spec.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise MatrixError(f"{here}.variants: expected a mapping of variant names")
    out = []
    for vname, v in variants.items():
        v = v or {}
        if not isinstance(v, dict) or set(v) - {"caught_by", "bug"}:
            raise MatrixError(f"{here}.variants.{vname}: expected {{caught_by: INVARIANT, bug: TEXT}} or {{}}")
        if vname != "correct" and not v.get("caught_by"):
            raise MatrixError(f"{here}.variants.{vname}.caught_by: a bug variant names the invariant that catches it")
        out.append(Variant(name, str(vname), v.get("caught_by"), str(v.get("bug", ""))))
    folder = os.path.dirname(os.path.abspath(path))
    return Integration(name, os.path.normpath(os.path.join(folder, spec["profile"])), entries, out,
                       str(spec.get("description", "")), os.path.join(os.path.dirname(folder), "scenarios"))


def load_variants(path: str | None = None) -> dict[str, list[Variant]]:
    return {name: i.variants for name, i in load_integrations(path).items()}


def problems(path: str) -> list[str]:
    """What is wrong with a variants file beyond its shape: a profile or catalogue entry that does
    not exist, a ``caught_by`` that names no registered invariant (one line each)."""
    from harness.verdict import REGISTRY
    try:
        integrations = load_integrations(path)
    except MatrixError as e:
        return [str(e)]
    out = []
    for name, i in integrations.items():
        if not os.path.isfile(i.profile):
            out.append(f"{path}: {name}.profile: no such file {i.profile}")
        for where in i.catalogue_paths:
            if not os.path.exists(where):
                out.append(f"{path}: {name}.catalogue: no such folder or file {where}")
        for v in i.variants:
            if v.caught_by and v.caught_by not in REGISTRY:
                out.append(f"{path}: {name}.variants.{v.name}.caught_by: {v.caught_by} is not a registered "
                           f"invariant (harness list --invariants)")
    return out


def catalogue(integrations: dict[str, Integration] | None = None) -> dict[str, list[Scenario]]:
    """Scenarios per integration: its catalogue entries loaded with its profile, where the app's own
    version of a scenario (``examples/<app>/scenarios/*.yaml`` extending it, adding app-specific
    checks) replaces it."""
    integrations = load_integrations() if integrations is None else integrations
    out: dict[str, list[Scenario]] = {}
    for name, i in integrations.items():
        generic = discover(i.catalogue_paths)
        own = discover([i.own_scenarios]) if os.path.isdir(i.own_scenarios) else []
        replaced = {p for f in own for p in _extended(f)}
        out[name] = [load_scenario(f, profile=i.profile) for f in generic
                     if os.path.abspath(f) not in replaced and _pinned(f) in (None, i.profile)]
        out[name] += [load_scenario(f, profile=i.profile) for f in own]
    return out


def _document(path: str) -> dict[str, Any]:
    with open(path) as f:
        data = yaml.safe_load(f)
    return data if isinstance(data, dict) else {}


def _extended(path: str) -> list[str]:
    """The catalogue scenarios an app's own scenario extends."""
    parents = _document(path).get("extends") or []
    parents = [parents] if isinstance(parents, str) else parents
    return [os.path.abspath(os.path.join(os.path.dirname(path), p)) for p in parents if not os.path.basename(p).startswith("_")]


def _pinned(path: str) -> str | None:
    """The profile a catalogue scenario names in its own file (not through a ``_targets`` fragment):
    it is written for that integration (e.g. an https-only SDK) and runs only against it."""
    own = _document(path).get("profile")
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), own)) if isinstance(own, str) else None


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
