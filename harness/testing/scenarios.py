"""Run a scenario from a test (the ``run_scenario`` fixture) or as a collected test item.

``ScenarioRunner.run(path_or_dict, target=..., variant=...)`` loads the scenario (a file, a ``Scenario``,
or a dict — ``extends`` in a dict is resolved against ``base_dir``), runs it with the scenario
``Runner`` (its own mocks, proxies and target process), writes the run report (summary.json,
junit.xml, report.html) under this worker's report folder, and returns a ``ScenarioOutcome``.
``failure_text`` renders the failing invariants with their evidence: the pytest failure message.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from harness import loops
from harness.scenario.loader import merge, resolve_extends, with_profile
from harness.testing.worker import worker_id

EVIDENCE_LINES = 6
LINE_WIDTH = 240


def _clip(text: str, width: int = LINE_WIDTH) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def failure_text(summary: dict[str, Any], run_dir: str, evidence_lines: int = EVIDENCE_LINES) -> str:
    """Why a run did not pass: its state, the failing or unexercised invariants with their evidence,
    the rules that never fired and the steps that never played, and where the report is."""
    state = summary.get("state") or ("PASS" if summary.get("ok") else "FAIL")
    head = (f"scenario {summary['scenario']} {'FAILED' if state == 'FAIL' else state} "
            f"(variant {summary.get('variant') or 'default'}, "
            f"seed {summary.get('seed')}, {summary.get('duration_s', 0):.1f}s)")
    lines = [head]
    if summary.get("error"):
        lines.append(f"  run error: {summary['error']}")
    for gap in summary.get("gaps") or []:
        lines.append(f"  INCONCLUSIVE {gap}")
    for inv in summary.get("invariants", []):
        mark = "PASS" if inv["ok"] else ("INCONCLUSIVE" if inv.get("exercised") is False else "FAIL")
        lines.append(f"  {mark} {inv['name']}: {inv['summary']}")
        if inv["ok"]:
            continue
        evidence = inv.get("evidence") or []
        for item in evidence[:evidence_lines]:
            lines.append("      " + _clip(json.dumps(item, default=str, separators=(", ", ": "))))
        total = inv.get("evidence_total", len(evidence))
        if total > min(len(evidence), evidence_lines):
            lines.append(f"      … {total - min(len(evidence), evidence_lines)} more in the report")
    lines.append(f"  report: {os.path.join(run_dir, 'report.html')}")
    lines.append(f"  journal: {os.path.join(run_dir, 'journal.jsonl')}")
    return "\n".join(lines)


@dataclass
class ScenarioOutcome:
    result: Any               # harness.run.runner.RunResult
    summary: dict[str, Any]   # what summary.json holds

    @property
    def ok(self) -> bool:
        return bool(self.result.ok)

    @property
    def state(self) -> str:
        """PASS, FAIL, ERROR, INCONCLUSIVE or INTERRUPTED (``harness.verdict.outcome``)."""
        return self.result.outcome.state

    @property
    def verdict(self) -> Any:
        return self.result.verdict

    @property
    def error(self) -> str | None:
        return self.result.error

    @property
    def run_dir(self) -> str:
        return self.result.run_dir

    @property
    def report(self) -> str:
        """Path of report.html."""
        return os.path.join(self.run_dir, "report.html")

    @property
    def journal(self) -> str:
        return os.path.join(self.run_dir, "journal.jsonl")

    def events(self) -> list[Any]:
        from harness.journal import read_events
        return read_events(self.journal)

    @property
    def invariants(self) -> dict[str, bool]:
        return {inv["name"]: inv["ok"] for inv in self.summary["invariants"]}

    @property
    def failed(self) -> list[str]:
        """Names of the invariants that failed."""
        return [inv["name"] for inv in self.summary["invariants"] if not inv["ok"]]

    def explain(self) -> str:
        if self.ok:
            return f"scenario {self.summary['scenario']} passed; report: {self.report}"
        return failure_text(self.summary, self.run_dir)

    def assert_ok(self) -> None:
        if not self.ok:
            raise AssertionError(self.explain())

    def __repr__(self) -> str:
        return f"<ScenarioOutcome {self.summary['scenario']} {self.state} {self.report}>"


def run_coroutine(coro_fn: Any) -> Any:
    """``asyncio.run`` — in a helper thread when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return loops.run(coro_fn())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = loops.run(coro_fn())
        except BaseException as e:  # re-raised in the caller
            box["error"] = e
    t = threading.Thread(target=target, name="harness-scenario")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class ScenarioRunner:
    """Runs scenarios into ``report_dir``; run ids carry the xdist worker id, so nothing collides."""

    def __init__(self, report_dir: str, *, seed: int | None = None, time_scale: float = 1.0,
                 variant: str | None = None, cwd: str | None = None, base_dir: str | None = None,
                 profile: str | None = None):
        self.report_dir = report_dir
        self.seed, self.time_scale, self.variant = seed, time_scale, variant
        self.cwd = cwd or os.getcwd()
        self.base_dir = base_dir or self.cwd
        self.profile = profile  # a target profile for scenario files (--harness-profile)

    def load(self, scenario: Any, base_dir: str | None = None) -> Any:
        from harness.scenario import Scenario, load_scenario, load_scenario_data
        if isinstance(scenario, Scenario):
            return scenario
        if isinstance(scenario, dict):
            data = resolve_extends(scenario, base_dir or self.base_dir)
            name = str(data.get("name") or "<scenario>")
            if isinstance(data.get("profile"), str):
                data["profile"] = os.path.join(base_dir or self.base_dir, data["profile"])
            return load_scenario_data(with_profile(data, {}, name, self.profile), name)
        if isinstance(scenario, (str, os.PathLike)):
            path = os.fspath(scenario)
            if not os.path.isabs(path) and not os.path.exists(path):
                path = os.path.join(base_dir or self.base_dir, path)
            return load_scenario(path, profile=self.profile)
        raise TypeError(f"run_scenario: expected a path, a dict or a Scenario, got {type(scenario).__name__}")

    def prepare(self, scenario: Any, target: str | dict[str, Any] | None = None) -> tuple[Any, str | None]:
        """The scenario with ``target`` overrides and a default working directory; the target URL."""
        from harness.scenario import Target
        target_url = None
        if isinstance(target, str):
            target_url = target
        elif isinstance(target, dict):
            base = scenario.target.model_dump(exclude_none=True) if scenario.target else {}
            scenario = scenario.model_copy(update={"target": Target.model_validate(merge(base, target))})
        if scenario.target is not None and scenario.target.cwd is None:
            scenario = scenario.model_copy(update={"target": scenario.target.model_copy(update={"cwd": self.cwd})})
        return scenario, target_url

    def run(self, scenario: Any, target: str | dict[str, Any] | None = None, *, variant: str | None = None,
            seed: int | None = None, time_scale: float | None = None, base_dir: str | None = None
            ) -> ScenarioOutcome:
        """Run one scenario. ``target``: a URL (use that running integration) or a dict merged into the
        scenario's ``target`` (``{"env": {...}}``, ``{"command": ...}``)."""
        from harness.report import write_run_report
        from harness.run.runner import Runner, RunOptions

        sc, target_url = self.prepare(self.load(scenario, base_dir), target)
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{sc.name}-{worker_id()}-{secrets.token_hex(3)}"
        opts = RunOptions(seed=self.seed if seed is None else seed,
                          time_scale=self.time_scale if time_scale is None else time_scale,
                          report_dir=self.report_dir, target_url=target_url,
                          variant=variant if variant is not None else self.variant, run_id=run_id)
        os.makedirs(self.report_dir, exist_ok=True)
        result = run_coroutine(lambda: Runner(sc, opts).run())
        summary = write_run_report(result, link_latest=False)
        return ScenarioOutcome(result, summary)
