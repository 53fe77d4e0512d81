"""The Go chat bot (examples/go_chatbot) through its profile: built by ``target.build``, the generic
chat scenarios pass against the correct bot, and a bug variant is caught by the invariant
examples/variants.yaml names for it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.journal import read_events

REPO = Path(__file__).resolve().parent.parent
PROFILE = REPO / "examples" / "go_chatbot" / "profile.yaml"
CHAT = REPO / "scenarios" / "chat"
pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")


def run(tmp_path: Path, *scenarios: str, variant: str | None = None) -> tuple[subprocess.CompletedProcess, list[dict]]:
    reports = tmp_path / (variant or "correct")
    args = ["run", *[str(CHAT / s) for s in scenarios], "--profile", str(PROFILE), "--report-dir", str(reports)]
    if variant is not None:
        args += ["--variant", variant]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_BUILD_CACHE": str(tmp_path / "build-cache")}
    r = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path, env=env)
    summaries = [json.loads(p.read_text()) for p in sorted(reports.rglob("summary.json"))
                 if (p.parent / "journal.jsonl").exists()]  # the runs, not the suite
    return r, summaries


def test_go_unit_tests():
    """UserSig, the webhook checks, claim-before-work dedupe, the pacer's ceiling (bot_test.go)."""
    r = subprocess.run(["go", "test", "-count=1", "."], cwd=PROFILE.parent, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_correct_bot_passes_generic_chat_scenarios(tmp_path):
    r, summaries = run(tmp_path, "forged-webhooks-refused.yaml", "webhook-duplicates-concurrent.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [s["state"] for s in summaries] == ["PASS", "PASS"]
    dup = next(s for s in summaries if s["scenario"] == "chat-webhook-duplicates-concurrent")
    run_dir = next(tmp_path.rglob(f"{dup['run_id']}"))
    events = read_events(str(run_dir / "journal.jsonl"))
    built = [e for e in events if e.get("step") == "target_built"]
    assert len(built) == 1 and Path(built[0]["build_dir"]).parent == tmp_path / "build-cache"
    # its UserSig is accepted: each login got exactly one welcome message, delivered by Chat
    welcomed = sorted(e["to"] for e in events if e["kind"] == "message" and "Welcome back" in json.dumps(e["body"]))
    assert welcomed == ["alice", "bob", "carol"]
    both = {e.get("cached") for s in summaries
            for e in read_events(str(next(tmp_path.rglob(s["run_id"])) / "journal.jsonl")) if e.get("step") == "target_built"}
    assert both == {False, True}  # two scenarios, one build


@pytest.mark.parametrize("variant,scenario", [("racy_dedupe", "webhook-duplicates-concurrent.yaml"),
                                              ("appid_unchecked", "forged-webhooks-refused.yaml")])
def test_a_bug_variant_is_caught_by_its_named_invariant(tmp_path, variant, scenario):
    named = yaml.safe_load((REPO / "examples" / "variants.yaml").read_text())["go_chatbot"]["variants"][variant]
    r, summaries = run(tmp_path, scenario, variant=variant)
    assert r.returncode == 1, r.stdout + r.stderr
    failed = [i["name"] for i in summaries[0]["invariants"] if not i["ok"]]
    assert failed == [named["caught_by"]], summaries[0]["reasons"]
