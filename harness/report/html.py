"""report.html: verdict per invariant, evidence, and an inline-SVG timeline of requests, faults and
callbacks per service. No network needed to view it."""

from __future__ import annotations

import html
from typing import Any, Iterable

from harness.journal import Event
from harness.report.evidence import evidence_block, expected_cell, observed_cell, refusals_section
from harness.report.timeline import timeline_svg

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;max-width:1200px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.ok{color:#137333}.fail{color:#b3261e} .muted{color:#667}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #e3e6ea;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f5f6f8;font-weight:600} code,pre{font:12px ui-monospace,monospace}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:320px;margin:4px 0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px}
.badge.ok{background:#e6f4ea}.badge.fail{background:#fce8e6} details summary{cursor:pointer}
.inconclusive{color:#8a5a00}.badge.inconclusive{background:#fef3d6}.interrupted{color:#5f3dc4}.badge.interrupted{background:#ece6fb}
svg text{font:11px system-ui,sans-serif;fill:#445} svg text.step-label{fill:#9334e6}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;align-items:center;font-size:13px} .legend svg{vertical-align:-1px}
.kv{margin:1px 0} .kv .k{color:#556} .kv.muted code{color:#889} .counts{margin-top:4px}
td.expected,td.observed{width:36%} tr.ev td{border-top:0;padding-top:0}
table.evidence{margin:4px 0 6px;font-size:12px} table.evidence th,table.evidence td{padding:2px 6px}
details.raw pre{max-height:240px} table.refusals pre{white-space:pre-wrap;max-height:200px} .files a{margin:0 2px} td.nowrap{white-space:nowrap}
"""

def _badge(ok: bool, text: str | None = None) -> str:
    return f'<span class="badge {"ok" if ok else "fail"}">{html.escape(text or ("PASS" if ok else "FAIL"))}</span>'


def _state_badge(state: str) -> str:
    """PASS / FAIL / ERROR / INCONCLUSIVE / INTERRUPTED, each in its colour."""
    cls = {"PASS": "ok", "INCONCLUSIVE": "inconclusive", "INTERRUPTED": "interrupted"}.get(state, "fail")
    return f'<span class="badge {cls}">{html.escape(state)}</span>'


def _state(summary: dict[str, Any]) -> str:
    return summary.get("state") or ("PASS" if summary["ok"] else "FAIL")


def _invariant_state(inv: dict[str, Any]) -> str:
    return "PASS" if inv["ok"] else ("INCONCLUSIVE" if inv.get("exercised") is False else "FAIL")


# the run folder's files the report links to, when they are there (locust.html: a load run's, written
# by locust after this report)
LINKED_FILES = (("journal.jsonl", "journal"), ("target.log", "target log"), ("locust.html", "locust report"),
                ("summary.json", "summary.json"), ("junit.xml", "junit.xml"))


def _links(files: Iterable[str]) -> str:
    present = set(files)
    items = [f'<a class="file" href="{name}">{label}</a>' for name, label in LINKED_FILES if name in present]
    return f'<p class="files">Files: {" · ".join(items)}</p>' if items else ""


def _flagged(summary: dict[str, Any]) -> dict[int, str]:
    """seq → name of the failed invariant whose evidence names that journal event."""
    out: dict[int, str] = {}
    for inv in summary.get("invariants") or []:
        if _invariant_state(inv) == "FAIL":
            for item in inv.get("evidence") or []:
                if isinstance(item, dict) and isinstance(item.get("seq"), int):
                    out.setdefault(item["seq"], inv["name"])
    return out


def run_html(summary: dict[str, Any], events: list[Event], files: Iterable[str] = ()) -> str:
    """``files``: the names in the run folder (what the report can link to)."""
    state = _state(summary)
    rows = []
    for inv in summary.get("invariants") or []:
        rows.append(f'<tr class="inv"><td>{_state_badge(_invariant_state(inv))}</td>'
                    f'<td><code>{html.escape(inv["name"])}</code></td><td class="expected">{expected_cell(inv)}</td>'
                    f'<td class="observed">{observed_cell(inv)}</td></tr>')
        if inv.get("evidence"):
            rows.append(f'<tr class="ev"><td></td><td colspan="3">{evidence_block(inv)}</td></tr>')
    error = f'<p class="fail">Run error: {html.escape(summary["error"])}</p>' if summary.get("error") else ""
    if summary.get("reasons") and state != "PASS":
        items = "".join(f"<li>{html.escape(r)}</li>" for r in summary["reasons"])
        incomplete = ' <span class="interrupted">(incomplete run)</span>' if summary.get("complete") is False else ""
        error += f'<h2>Why {html.escape(state)}{incomplete}</h2><ul class="{state.lower()}">{items}</ul>'

    counts = " · ".join(f"{k}: {v}" for k, v in (summary.get("counts") or {}).items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(summary['scenario'])} — chaos-harness</title>
<style>{CSS}</style></head><body>
<h1>{_state_badge(state)} {html.escape(summary['scenario'])}</h1>
<p class="muted">{html.escape(summary.get('description') or '')}</p>
<p>run <code>{html.escape(summary['run_id'])}</code> · seed {summary['seed']} · variant <code>{html.escape(str(summary.get('variant')))}</code>
 · time scale {summary.get('time_scale')} · {summary.get('duration_s')} s · {html.escape(counts)}</p>
{_links(files)}
{error}
<h2>Invariants</h2><table class="invariants"><tr><th></th><th>invariant</th><th>expected</th><th>observed</th></tr>{''.join(rows)}</table>
{refusals_section(events)}
<h2>Timeline</h2>{timeline_svg(events, flagged=_flagged(summary))}
</body></html>"""


def _expectation(s: dict[str, Any]) -> str:
    """What the run should have given and whether it did: ``expected`` True/False (PASS / not PASS;
    default True), or ``expectation`` text for runs that may go either way (a bug variant)."""
    if s.get("expectation"):
        return html.escape(s["expectation"])
    expected = True if s.get("expected") is None else bool(s["expected"])
    ok = expected == s["ok"]
    return f'<span class="muted">should {"PASS" if expected else "not PASS"}:</span> ' + _badge(
        ok, "as expected" if ok else "UNEXPECTED")


def suite_html(title: str, summaries: list[dict[str, Any]], matrix: str = "",
               headline: tuple[bool, str] | None = None) -> str:
    passed = sum(s["ok"] for s in summaries)
    ok, text = headline or (passed == len(summaries), f"{passed}/{len(summaries)} passed")
    rows = []
    for s in summaries:
        failed = [i["name"] for i in s.get("invariants") or [] if not i["ok"]]
        detail = html.escape(s["error"]) if s.get("error") else html.escape(", ".join(failed) or "all invariants held")
        if s.get("gaps"):
            detail += "<br>" + "<br>".join(html.escape(g) for g in s["gaps"])
        exp = _expectation(s)
        rows.append(f'<tr><td>{_state_badge(_state(s))}</td><td><a href="{html.escape(s["href"])}">{html.escape(s["scenario"])}</a></td>'
                    f'<td><code>{html.escape(str(s.get("variant")))}</code></td><td>{detail}</td><td>{exp}</td>'
                    f'<td class="nowrap">{s.get("duration_s")} s</td></tr>')
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head><body>
<h1>{_badge(ok, text)} {html.escape(title)}</h1>
{matrix}
<h2>Runs</h2><table><tr><th></th><th>scenario</th><th>variant</th><th>failed invariants</th><th>expectation</th><th>time</th></tr>{''.join(rows)}</table>
</body></html>"""
