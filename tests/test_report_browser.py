"""report.html as a person sees it, in real headless Chromium: a passing run, a failing run and a
load run. On each page no two step labels' boxes overlap, every file link resolves, the legend is
there and red is drawn only for failures. HARNESS_DOCS_SCREENSHOTS=1 also writes the screenshots
into docs/img/ (what docs/reports.md shows)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} not installed (scripts/system-deps.sh installs Debian chromium)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SCENARIO = ROOT / "scenarios" / "captcha" / "internal-error-fails-open.yaml"
LOAD = f"""\
name: report-load
extends: {ROOT / "scenarios" / "_targets" / "captcha_backend.yaml"}
traffic:
  - name: login
    vars: {{t: {{captcha_ticket: {{}}}}}}
    request: {{method: POST, path: /login, json: {{ticket: "${{t.ticket}}", randstr: "${{t.randstr}}", user: "u${{n}}"}}}}
  - name: bad-login
    vars: {{t: {{bad_ticket: {{kind: unknown}}}}}}
    request: {{method: POST, path: /login, json: {{ticket: "${{t.ticket}}", randstr: "${{t.randstr}}"}}}}
timeline:
  - at: 0.5s
    add_rules: [{{id: internal-error, match: {{service: captcha, action: DescribeCaptchaResult}},
                  effect: {{error: InternalError}}}}]
  - at: 1.5s
    remove_rules: [internal-error]
expect:
  - verification_fail_open: {{flow: login, max_latency: 3s}}
  - verification_enforced: {{}}
"""

PAGE_FACTS = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {
    labels: [...document.querySelectorAll('svg text.step-label')].map(box),
    links: [...document.querySelectorAll('a.file')].map(a => a.getAttribute('href')),
    legend: [...document.querySelectorAll('.legend-item')].map(e => e.dataset.category),
    red: [...document.querySelectorAll('circle.pt')].filter(c => c.getAttribute('fill') === '#c5221f')
         .map(c => c.getAttribute('class')),
    points: document.querySelectorAll('circle.pt').length,
    expected: [...document.querySelectorAll('td.expected')].map(e => e.innerText),
  };
}"""


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("reports")
    out = {}
    for name, variant, code in (("pass", "correct", 0), ("fail", "fail_closed", 1)):
        r = harness("run", str(SCENARIO), "--variant", variant, "--report-dir", str(base / name), "-q", cwd=base)
        assert r.returncode == code, r.stdout + r.stderr
        out[name] = (base / name / "latest").resolve()
    (base / "load.yaml").write_text(LOAD)
    r = harness("load", str(base / "load.yaml"), "--users", "3", "--run-time", "3s", "--wait", "0.05:0.15",
                "--report-dir", str(base / "load"), "-q", cwd=base)
    assert r.returncode == 0, r.stdout + r.stderr
    out["load"], = [p for p in (base / "load").iterdir() if p.is_dir() and p.name != "latest"]
    return out


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.mark.parametrize("name", ["pass", "fail", "load"])
def test_report_page_reads_well(browser, reports, name, tmp_path):
    run_dir = reports[name]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto((run_dir / "report.html").as_uri())
    facts = page.evaluate(PAGE_FACTS)
    shot = tmp_path / f"report-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    page.close()

    labels = facts["labels"]
    assert labels, "the timeline labels its steps"
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], f"label boxes overlap: {a} {b}"
    assert "journal.jsonl" in facts["links"] and "target.log" in facts["links"]
    assert all((run_dir / href).is_file() for href in facts["links"]), facts["links"]
    assert ("locust.html" in facts["links"]) == (name == "load")
    assert "step" in facts["legend"] and "fault" in facts["legend"] and facts["points"] > 10
    assert all(c == "pt failed" for c in facts["red"])
    if name == "fail":
        assert facts["red"], "the failed invariant's evidence is drawn red"
        assert any("flow" in e and "login" in e for e in facts["expected"])
    else:
        assert "refused" in facts["legend"] and not facts["red"]  # the bad tickets' 403s are not failures
    if os.environ.get("HARNESS_DOCS_SCREENSHOTS"):
        shutil.copy(shot, ROOT / "docs" / "img" / shot.name)
