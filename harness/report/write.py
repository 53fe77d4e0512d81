"""Write a run's (or a suite's) report files and point ``reports/latest`` at it."""

from __future__ import annotations

import json
import os
from typing import Any

from harness.journal import read_events
from harness.report.html import run_html, suite_html
from harness.report.junit import junit_xml
from harness.verdict.outcome import FAIL, PASS, worst


def run_summary(result: Any) -> dict[str, Any]:
    verdict = result.verdict.to_dict() if result.verdict is not None else {"ok": False, "invariants": []}
    outcome = result.outcome
    return {"run_id": result.run_id, "scenario": result.scenario.name, "description": result.scenario.description,
            "tags": result.scenario.tags, "seed": result.seed, "variant": result.variant,
            "time_scale": result.time_scale, "ok": outcome.ok, **outcome.to_dict(), "exit_code": outcome.exit_code,
            "gaps": result.gaps,
            "error": result.error, "duration_s": result.duration_s, "counts": result.counts,
            "invariants": with_params(verdict["invariants"], result.scenario.expect), "journal": "journal.jsonl"}


def with_params(invariants: list[dict[str, Any]], expect: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each invariant's result with what the scenario asked of it: ``params`` as written and
    ``defaults`` (the rest of its parameters), for the report's "expected" column."""
    from harness.verdict import REGISTRY
    out = []
    for inv, item in zip(invariants, expect):
        (name, given), = item.items()
        inv = dict(inv)
        if name == inv["name"] and name in REGISTRY:
            inv["params"] = dict(given or {})
            full = REGISTRY[name].params.model_validate(given or {}).model_dump(mode="json")
            inv["defaults"] = {k: v for k, v in full.items() if k not in inv["params"]}
        out.append(inv)
    return out + invariants[len(out):]


def write_run_report(result: Any, link_latest: bool = True) -> dict[str, Any]:
    summary = run_summary(result)
    d = result.run_dir
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    with open(os.path.join(d, "junit.xml"), "wb") as f:
        f.write(junit_xml([summary]))
    journal = os.path.join(d, "journal.jsonl")
    events = read_events(journal) if os.path.exists(journal) else []
    files = set(os.listdir(d)) | ({"locust.html"} if "locust_requests" in result.counts else set())
    with open(os.path.join(d, "report.html"), "w") as f:
        f.write(run_html(summary, events, files))
    if link_latest:
        point_latest(d)
    return summary


def write_suite_report(suite_dir: str, title: str, summaries: list[dict[str, Any]], matrix_html: str = "",
                       extra: dict[str, Any] | None = None, headline: tuple[bool, str] | None = None) -> None:
    os.makedirs(suite_dir, exist_ok=True)
    with open(os.path.join(suite_dir, "summary.json"), "w") as f:
        json.dump({"title": title, "ok": all(s["ok"] for s in summaries), "state": suite_state(summaries),
                   "runs": summaries, **(extra or {})},
                  f, indent=1, default=str)
    with open(os.path.join(suite_dir, "junit.xml"), "wb") as f:
        f.write(junit_xml(summaries))
    with open(os.path.join(suite_dir, "report.html"), "w") as f:
        f.write(suite_html(title, summaries, matrix_html, headline))
    point_latest(suite_dir)


def suite_state(summaries: list[dict[str, Any]]) -> str:
    return worst(s.get("state", PASS if s["ok"] else FAIL) for s in summaries)


def point_latest(directory: str) -> None:
    parent = os.path.dirname(os.path.abspath(directory))
    link = os.path.join(parent, "latest")
    tmp = link + ".tmp"
    try:
        if os.path.lexists(tmp):
            os.remove(tmp)
        os.symlink(os.path.basename(os.path.abspath(directory)), tmp)
        os.replace(tmp, link)
    except OSError:
        pass
