"""report.html: verdict per invariant, evidence, and an inline-SVG timeline of requests, faults and
callbacks per service. No network needed to view it."""

from __future__ import annotations

import html
import json
from typing import Any

from harness.journal import Event
from mocks.registry import SERVICES

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
svg text{font:11px system-ui,sans-serif;fill:#445}
"""

def lane_order() -> list[str]:
    """Timeline lanes, top to bottom: the driver, one per service (registry order), callbacks, proxies."""
    return ["driver", *SERVICES, "callbacks", "proxy"]


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


def _points(events: list[Event]) -> tuple[dict[str, list[tuple[float, str, str]]], list[tuple[float, str]], float]:
    lanes: dict[str, list[tuple[float, str, str]]] = {k: [] for k in lane_order()}
    steps: list[tuple[float, str]] = []
    start = next((e.t for e in events if e.kind == "step" and e.get("step") == "run_started"), 0.0)
    end = start
    for e in events:
        t = e.t - start
        end = max(end, e.t)
        if e.kind == "driver":
            bad = e.get("status") is None or e.get("status") >= 400
            lanes["driver"].append((t, "#b3261e" if bad else "#137333", f"{e.get('flow')} #{e.get('n')}: {e.get('status') or e.get('error')}"))
        elif e.kind == "response" and e.service in lanes:
            faulted = e.get("rule") is not None
            label = f"{e.action}: {e.get('status') if e.get('outcome', 'delivered') == 'delivered' else e.get('outcome')}" + (f" (rule {e.get('rule')})" if faulted else "")
            lanes[e.service].append((t, "#b3261e" if faulted else "#1a73e8", label))
        elif e.kind == "callback":
            ok = e.get("outcome") == "delivered"
            colour = "#137333" if ok else ("#f29900" if e.get("outcome") == "dropped" else "#b3261e")
            lanes["callbacks"].append((t, colour, f"{e.service} {e.action}: {e.get('outcome')} {e.get('status') or ''}"))
        elif e.kind.startswith("proxy"):
            lanes["proxy"].append((t, "#b3261e" if e.get("rule") else "#7b61ff", f"{e.get('link')}: {e.get('outcome') or e.get('status')}"))
        elif e.kind == "step" and (str(e.get("step", "")).startswith(("timeline.", "link_", "service_", "target_"))):
            steps.append((t, str(e.get("step")).removeprefix("timeline.")))
    return {k: v for k, v in lanes.items() if v}, steps, max(end - start, 0.001)


def timeline_svg(events: list[Event], width: int = 1100, max_points: int = 3000) -> str:
    lanes, steps, span = _points(events)
    if not lanes and not steps:
        return '<p class="muted">no events to draw</p>'
    left, lane_h, top = 90, 34, 24
    height = top + lane_h * max(1, len(lanes)) + 20
    scale = (width - left - 20) / span
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i in range(6):
        x = left + (width - left - 20) * i / 5
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 16}" stroke="#eef0f3"/>'
                   f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle">{span * i / 5:.1f}s</text>')
    for row, (name, pts) in enumerate(lanes.items()):
        y = top + row * lane_h + lane_h / 2
        out.append(f'<text x="4" y="{y + 4:.1f}">{html.escape(name)} ({len(pts)})</text>')
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" stroke="#d5d9df"/>')
        step = max(1, len(pts) // max_points)
        for t, colour, label in pts[::step]:
            x = left + max(0.0, t) * scale
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}" fill-opacity="0.75">'
                       f'<title>{t:.3f}s {html.escape(label)}</title></circle>')
    for t, label in steps:
        x = left + max(0.0, t) * scale
        out.append(f'<line x1="{x:.1f}" y1="{top - 10}" x2="{x:.1f}" y2="{height - 16}" stroke="#9334e6" '
                   f'stroke-dasharray="4 3"><title>{t:.3f}s {html.escape(label)}</title></line>'
                   f'<text x="{x + 2:.1f}" y="{top - 12}" fill="#9334e6">{html.escape(label[:18])}</text>')
    out.append("</svg>")
    return "".join(out)


def run_html(summary: dict[str, Any], events: list[Event]) -> str:
    state = _state(summary)
    rows = []
    for inv in summary.get("invariants") or []:
        evidence = ""
        if inv.get("evidence"):
            evidence = (f'<details><summary>evidence ({inv.get("evidence_total", len(inv["evidence"]))})</summary>'
                        f'<pre>{html.escape(json.dumps(inv["evidence"], indent=1, default=str))}</pre></details>')
        rows.append(f'<tr><td>{_state_badge(_invariant_state(inv))}</td><td><code>{html.escape(inv["name"])}</code></td>'
                    f'<td>{html.escape(inv["summary"])}{evidence}</td></tr>')
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
{error}
<h2>Invariants</h2><table><tr><th></th><th>invariant</th><th>result</th></tr>{''.join(rows)}</table>
<h2>Timeline</h2>{timeline_svg(events)}
<p class="muted">Blue: answered normally · red: shaped by a fault rule or failed · green: delivered / succeeded · orange: dropped callback · purple lines: timeline steps. Hover for details. Journal: <code>journal.jsonl</code>.</p>
</body></html>"""


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
        expected = s.get("expected")
        exp = "" if expected is None else _badge(expected == s["ok"], "as expected" if expected == s["ok"] else "UNEXPECTED")
        rows.append(f'<tr><td>{_state_badge(_state(s))}</td><td><a href="{html.escape(s["href"])}">{html.escape(s["scenario"])}</a></td>'
                    f'<td><code>{html.escape(str(s.get("variant")))}</code></td><td>{detail}</td><td>{exp}</td>'
                    f'<td>{s.get("duration_s")} s</td></tr>')
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head><body>
<h1>{_badge(ok, text)} {html.escape(title)}</h1>
{matrix}
<h2>Runs</h2><table><tr><th></th><th>scenario</th><th>variant</th><th>failed invariants</th><th>expectation</th><th>time</th></tr>{''.join(rows)}</table>
</body></html>"""
