"""The report's timeline: an inline SVG with one lane per source (driver, each service, callbacks,
proxies) and the timeline steps as dashed lines, plus its legend.

- The axis spans the events drawn (first to last, on round ticks), not the whole process lifetime,
  so a short run fills the width.
- Step labels never overlap: each goes into the first of ``LABEL_ROWS`` rows above the lanes where
  it fits; a label that fits nowhere is left out (its line keeps a tooltip) and counted.
- One colour, one meaning (``CATEGORIES``): red is only "failed" (5xx, no answer, undelivered); a
  fault rule's answer, a 4xx refusal and a normal answer each have their own colour, in the legend.
"""

from __future__ import annotations

import html
import math
from typing import NamedTuple

from harness.journal import Event
from mocks.registry import SERVICES

# category -> (colour, legend text)
CATEGORIES: dict[str, tuple[str, str]] = {
    "ok": ("#137333", "succeeded / delivered"),
    "normal": ("#1a73e8", "answered normally"),
    "fault": ("#e8710a", "fault applied (a rule shaped it)"),
    "refused": ("#7a8491", "refused (4xx), e.g. a bad ticket's 403"),
    "rejected": ("#c2185b", "a mock refused the request (signature, key, parameter: see the table above)"),
    "failed": ("#c5221f", "failed: a failed invariant's evidence, 5xx, no answer, not delivered"),
    "proxied": ("#7b61ff", "carried by the proxy"),
}
STEP_COLOUR = "#9334e6"
CHAR_W = 6.4        # px per character of an 11 px label (a generous estimate: boxes never touch)
LABEL_ROWS = 3
LABEL_ROW_H = 14
LABEL_GAP = 6
LABEL_MAX = 26      # characters
DENY_INTENTS = {"deny", "refuse", "reject", "block", "forbid"}


class Point(NamedTuple):
    t: float
    category: str
    label: str


class Label(NamedTuple):
    x: float        # left edge
    row: int
    text: str


def lane_order() -> list[str]:
    """Timeline lanes, top to bottom: the driver, one per service (registry order), callbacks, proxies."""
    return ["driver", *SERVICES, "callbacks", "proxy"]


def driver_category(e: Event) -> str:
    status = e.get("status")
    if status is None or status >= 500:
        return "failed"
    if status >= 400:
        return "failed" if e.get("intent") == "allow" else "refused"
    return "failed" if e.get("intent") in DENY_INTENTS else "ok"


def point(e: Event, t: float) -> tuple[str, Point] | None:
    """The lane and point an event is drawn as, or None."""
    if e.kind == "driver":
        return "driver", Point(t, driver_category(e), f"{e.get('flow')} #{e.get('n')}: {e.get('status') or e.get('error')}")
    if e.kind == "response" and e.service in SERVICES:
        faulted = e.get("rule") is not None
        wire = e.get("status") if e.get("outcome", "delivered") == "delivered" else e.get("outcome")  # what reached it
        label = f"{e.action}: {wire}" + (f" (rule {e.get('rule')})" if faulted else "")
        refused = e.get("refused")
        if isinstance(refused, dict) and not faulted:
            return e.service, Point(t, "rejected", f"{label}: refused: {refused.get('why') or refused.get('check')}")
        return e.service, Point(t, "fault" if faulted else "normal", label)
    if e.kind == "callback":
        outcome = e.get("outcome")
        category = "fault" if e.get("rule") or outcome == "dropped" else ("ok" if outcome == "delivered" else "failed")
        return "callbacks", Point(t, category, f"{e.service} {e.action}: {outcome} {e.get('status') or ''}")
    if e.kind.startswith("proxy") or e.kind in ("toxic", "link"):
        category = "fault" if e.get("rule") or e.kind in ("toxic", "link") else "proxied"
        return "proxy", Point(t, category, f"{e.get('link')}: {e.get('outcome') or e.get('op') or e.get('status')}")
    return None


def points(events: list[Event], flagged: dict[int, str] | None = None
           ) -> tuple[dict[str, list[Point]], list[tuple[float, str]]]:
    """Lanes of points and timeline steps, in run time (0 = ``run_started``); set-up before it is left
    out. ``flagged``: seq → the failed invariant whose evidence holds that event (drawn as failed)."""
    flagged = flagged or {}
    lanes: dict[str, list[Point]] = {k: [] for k in lane_order()}
    steps: list[tuple[float, str]] = []
    start = next((e.t for e in events if e.kind == "step" and e.get("step") == "run_started"), 0.0)
    for e in events:
        t = e.t - start
        if e.kind == "step":
            if t >= 0 and str(e.get("step", "")).startswith(("timeline.", "link_", "service_", "target_")):
                steps.append((t, str(e.get("step")).removeprefix("timeline.")))
            continue
        drawn = point(e, t)
        if drawn is None:
            continue
        lane, p = drawn
        if e.seq in flagged:
            p = Point(t, "failed", f"{p.label} — evidence of {flagged[e.seq]}")
        lanes[lane].append(p)
    return {k: v for k, v in lanes.items() if v}, steps


def nice_step(span: float, ticks: int = 6) -> float:
    """A round tick step (1, 2 or 5 × 10ⁿ) giving about ``ticks`` intervals over ``span``."""
    raw = max(span, 1e-3) / ticks
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def axis(times: list[float]) -> tuple[float, float, float]:
    """(lo, hi, tick step): the drawn events' span, widened to round ticks."""
    lo, hi = min(times), max(times)
    if hi - lo < 1e-3:
        lo, hi = lo - 0.5, hi + 0.5
    step = nice_step(hi - lo)
    lo = math.floor(lo / step + 1e-9) * step
    hi = math.ceil(hi / step - 1e-9) * step
    return lo, hi, step


def label_width(text: str) -> float:
    return len(text) * CHAR_W


def place_labels(xs: list[tuple[float, str]], left: float, right: float) -> tuple[list[Label], int]:
    """Greedy rows: each label (at its line's x) goes in the first row where it does not touch the
    previous one; labels that would cross ``right`` end at their line instead. Returns (placed, hidden)."""
    ends = [-math.inf] * LABEL_ROWS
    placed, hidden = [], 0
    for x, raw in sorted(xs):
        text = raw if len(raw) <= LABEL_MAX else raw[:LABEL_MAX - 1] + "…"
        w = label_width(text)
        start = x + 2 if x + 2 + w <= right else max(left, x - 2 - w)
        row = next((r for r in range(LABEL_ROWS) if start >= ends[r] + LABEL_GAP), None)
        if row is None:
            hidden += 1
            continue
        ends[row] = start + w
        placed.append(Label(start, row, text))
    return placed, hidden


def fmt_t(t: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{t:.{decimals}f}s"


def timeline_svg(events: list[Event], width: int = 1100, max_points: int = 3000,
                 flagged: dict[int, str] | None = None) -> str:
    lanes, steps = points(events, flagged)
    times = [p.t for pts in lanes.values() for p in pts] + [t for t, _ in steps]
    if not times:
        return '<p class="muted">no events to draw</p>'
    lo, hi, tick = axis(times)
    left, right, lane_h = 110, width - 24, 34
    labels, hidden = place_labels([(left + (t - lo) * (right - left) / (hi - lo), name) for t, name in steps],
                                  left, right)
    rows = 1 + max((lb.row for lb in labels), default=-1)
    top = 12 + rows * LABEL_ROW_H
    height = top + lane_h * max(1, len(lanes)) + 22
    scale = (right - left) / (hi - lo)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'data-lo="{lo:g}" data-hi="{hi:g}" data-left="{left}" data-right="{right}">']
    n_ticks = round((hi - lo) / tick)
    for i in range(n_ticks + 1):
        v = lo + i * tick
        x = left + (v - lo) * scale
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - 18}" stroke="#eef0f3"/>'
                   f'<text class="tick" x="{x:.1f}" y="{height - 5}" text-anchor="middle">{fmt_t(v, tick)}</text>')
    for row, (name, pts) in enumerate(lanes.items()):
        y = top + row * lane_h + lane_h / 2
        out.append(f'<text x="4" y="{y + 4:.1f}">{html.escape(name)} ({len(pts)})</text>')
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#d5d9df"/>')
        every = max(1, math.ceil(len(pts) / max_points))
        for p in pts[::every]:
            x = left + (p.t - lo) * scale
            out.append(f'<circle class="pt {p.category}" cx="{x:.1f}" cy="{y:.1f}" r="3.5" '
                       f'fill="{CATEGORIES[p.category][0]}" fill-opacity="0.8"><title>{p.t:.3f}s '
                       f'{html.escape(p.label)}</title></circle>')
    for t, name in steps:
        x = left + (t - lo) * scale
        out.append(f'<line class="step" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 18}" '
                   f'stroke="{STEP_COLOUR}" stroke-dasharray="4 3"><title>{t:.3f}s {html.escape(name)}</title></line>')
    for lb in labels:
        out.append(f'<text class="step-label" x="{lb.x:.1f}" y="{10 + lb.row * LABEL_ROW_H:.0f}" '
                   f'fill="{STEP_COLOUR}">{html.escape(lb.text)}</text>')
    out.append("</svg>")
    return "".join(out) + legend(lanes, hidden)


def legend(lanes: dict[str, list[Point]], hidden_labels: int = 0) -> str:
    """What each colour means (only the ones drawn), the step lines, and hidden labels if any."""
    seen: dict[str, int] = {}
    for pts in lanes.values():
        for p in pts:
            seen[p.category] = seen.get(p.category, 0) + 1
    items = [f'<span class="legend-item" data-category="{cat}"><svg width="12" height="12"><circle cx="6" cy="6" '
             f'r="5" fill="{colour}"/></svg> {html.escape(text)} ({seen[cat]})</span>'
             for cat, (colour, text) in CATEGORIES.items() if cat in seen]
    items.append(f'<span class="legend-item" data-category="step"><svg width="12" height="12"><line x1="6" y1="0" '
                 f'x2="6" y2="12" stroke="{STEP_COLOUR}" stroke-dasharray="3 2"/></svg> timeline step</span>')
    more = (f' <span class="muted">({hidden_labels} step label{"s" if hidden_labels != 1 else ""} left out '
            f'where they would overlap: hover the lines)</span>') if hidden_labels else ""
    return f'<p class="legend">{" ".join(items)}{more} <span class="muted">Hover a point for details.</span></p>'
