"""The 2captcha plain-text replies read as their ``json=1`` twins, for journal matching: a scenario's
``where: {body.request: ERROR_NO_SLOT_AVAILABLE}`` matches a client that speaks plain text too."""

from __future__ import annotations

from typing import Any, Mapping

from mocks.solver.vocabulary import POLL, SUBMIT


def text_as_json(text: str, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """``OK|123`` → ``{"status": 1, "request": "123"}``; ``ERROR_…`` / ``CAPCHA_NOT_READY`` (any
    upper-case code) → ``{"status": 0, "request": …}``; any other value (a balance, a bulk answer) →
    status 1. Only ``in.php`` / ``res.php`` answers; anything else: None."""
    if event.get("kind") != "response" or event.get("action") not in (SUBMIT, POLL):
        return None
    text = text.strip()
    if text.startswith("OK|"):
        return {"status": 1, "request": text[3:]}
    if text and text.replace("_", "").isalpha() and text.isupper():
        return {"status": 0, "request": text}
    return {"status": 1, "request": text}
