"""The invariants table of report.html: per invariant, what was expected (its parameters, defaults
marked) next to what was observed (the summary sentence and the counts), and the evidence as a
table — one line per item — with the raw JSON one click away."""

from __future__ import annotations

import html
import json
from typing import Any

EVIDENCE_ROWS = 20
EVIDENCE_COLUMNS = 8


LIST_MAX = 10


def value_text(v: Any) -> str:
    """A value as a person reads it: lists joined, a run of whole numbers as a range (200–299)."""
    if isinstance(v, str):
        return v
    if isinstance(v, list) and len(v) > 2 and all(type(x) is int for x in v) and v == list(range(v[0], v[-1] + 1)):
        return f"{v[0]}–{v[-1]}"
    if isinstance(v, list) and all(isinstance(x, (str, int, float)) for x in v):
        more = f" … (+{len(v) - LIST_MAX})" if len(v) > LIST_MAX else ""
        return ", ".join(map(str, v[:LIST_MAX])) + more
    if v is None:
        return "—"
    if isinstance(v, dict) and all(isinstance(x, (str, int, float, bool)) or x is None for x in v.values()):
        return ", ".join(f"{k}={x}" for k, x in v.items())
    return json.dumps(v, default=str, separators=(", ", ": "))


def pairs(items: dict[str, Any], muted: set[str] | None = None) -> str:
    """``key: value`` lines (a definition list); keys in ``muted`` are shown as defaults."""
    if not items:
        return '<span class="muted">—</span>'
    rows = []
    for k, v in items.items():
        dflt = ' <span class="muted">(default)</span>' if muted and k in muted else ""
        rows.append(f'<div class="kv{" muted" if dflt else ""}"><span class="k">{html.escape(k)}</span> '
                    f'<code>{html.escape(value_text(v))}</code>{dflt}</div>')
    return "".join(rows)


def expected_cell(inv: dict[str, Any]) -> str:
    given = inv.get("params") or {}
    defaults = {k: v for k, v in (inv.get("defaults") or {}).items() if k not in given and v is not None}
    return pairs({**given, **defaults}, set(defaults))


def observed_cell(inv: dict[str, Any]) -> str:
    counts = inv.get("counts") or {}
    return (f'<div>{html.escape(inv.get("summary") or "")}</div>'
            + (f'<div class="counts">{pairs(counts)}</div>' if counts else ""))


def evidence_table(items: list[dict[str, Any]]) -> str:
    """Items as rows; columns: the keys in order of first appearance (the rest in one "more" column)."""
    keys: list[str] = []
    for item in items:
        keys += [k for k in item if k not in keys]
    shown, rest = keys[:EVIDENCE_COLUMNS], keys[EVIDENCE_COLUMNS:]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in shown) + ("<th>more</th>" if rest else "")
    rows = []
    for item in items[:EVIDENCE_ROWS]:
        cells = "".join(f"<td>{html.escape(value_text(item.get(k))) if k in item else ''}</td>" for k in shown)
        if rest:
            cells += "<td>" + html.escape("; ".join(f"{k}={value_text(item[k])}" for k in rest if k in item)) + "</td>"
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="evidence"><tr>{head}</tr>{"".join(rows)}</table>'


def evidence_block(inv: dict[str, Any]) -> str:
    items = inv.get("evidence") or []
    if not items:
        return ""
    total = inv.get("evidence_total", len(items))
    shown = min(len(items), EVIDENCE_ROWS)
    note = f" (first {shown} of {total})" if total > shown else f" ({total})"
    dicts = all(isinstance(i, dict) for i in items)
    body = evidence_table(items) if dicts else "".join(f"<div>{html.escape(value_text(i))}</div>" for i in items)
    raw = (f'<details class="raw"><summary>raw JSON</summary>'
           f'<pre>{html.escape(json.dumps(items, indent=1, default=str))}</pre></details>')
    opened = " open" if not inv.get("ok") else ""
    return f'<details class="evidence"{opened}><summary>evidence{note}</summary>{body}{raw}</details>'


REFUSAL_GROUPS = 20


def refusals_section(events: list[Any]) -> str:
    """"Requests the mocks refused": the journaled ``refused`` of each response (which check, what the
    mock expected, what it got, anything more such as a canonical request), one row per distinct
    cause with its count, the first one's full detail one click away. Empty when nothing was refused."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for e in events:
        refused = e.get("refused") if e.kind == "response" else None
        if isinstance(refused, dict):
            key = (e.service, e.action, refused.get("check"), value_text(refused.get("expected")),
                   value_text(refused.get("got")))
            groups.setdefault(key, []).append(e)
    if not groups:
        return ""
    rows = []
    for (service, action, check, expected, got), evs in sorted(groups.items(), key=lambda kv: -len(kv[1]))[
            :REFUSAL_GROUPS]:
        first = evs[0].get("refused")
        more = {k: v for k, v in first.items() if k not in ("check", "expected", "got", "why")}
        detail = "".join(f'<div class="k">{html.escape(k)}</div><pre>{html.escape(value_text(v))}</pre>'
                         for k, v in more.items())
        extra = f'<details><summary>{", ".join(map(html.escape, more))}</summary>{detail}</details>' if more else ""
        rows.append(f'<tr class="refusal"><td>{len(evs)}×</td><td><code>{html.escape(f"{service} {action}")}</code>'
                    f'</td><td>{html.escape(str(check))}</td><td><code>{html.escape(expected)}</code></td>'
                    f'<td><code>{html.escape(got)}</code>{extra}</td><td class="muted">seq {evs[0].seq}</td></tr>')
    total = sum(len(v) for v in groups.values())
    return (f'<h2>Requests the mocks refused ({total})</h2><p class="muted">The integration sent these and the '
            f'mock said no: what it expected next to what it got.</p><table class="refusals"><tr><th></th>'
            f'<th>call</th><th>check</th><th>expected</th><th>got</th><th>first</th></tr>{"".join(rows)}</table>')
