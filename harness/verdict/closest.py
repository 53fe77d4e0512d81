"""What was seen instead, when a ``where`` matched nothing: the events that match all of it but one
field, and the values that field had there — so "0 events match" comes with "6 match all but
status (seen: 400 ×6)"."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Iterable

from harness.journal import Event
from harness.verdict.base import event_matches, field_value

SHOWN = 3


def _text(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


def closest(events: Iterable[Event], where: dict[str, Any]) -> dict[str, Any] | None:
    """``{"all_but": field, "near": n, "seen": "400 ×6, 403 ×2"}`` for the field whose omission
    matches the most events (``kind`` is never left out); None when no field gets any."""
    events = list(events)
    best: tuple[int, str, Counter[str]] | None = None
    for key in where:
        if key == "kind" or len(where) < 2:
            continue
        rest = {k: v for k, v in where.items() if k != key}
        near = [e for e in events if event_matches(e, rest)]
        if near and (best is None or len(near) > best[0]):
            best = (len(near), key, Counter(_text(field_value(key, e.to_dict())) for e in near))
    if best is None:
        return None
    n, key, seen = best
    more = len(seen) - SHOWN
    values = ", ".join(f"{v} ×{c}" for v, c in seen.most_common(SHOWN)) + (f" and {more} more" if more > 0 else "")
    return {"all_but": key, "near": n, "seen": values}


def sentence(near: dict[str, Any]) -> str:
    return f"{near['near']} match all but {near['all_but']} (seen: {near['seen']})"
