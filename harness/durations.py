"""Durations as scenario and rule files write them: "250ms", "5s", "2m", "1h" or a bare number of seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_FACTOR = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Return seconds. Raises ValueError with a message fit for a one-line error."""
    if isinstance(value, bool):
        raise ValueError('expected a duration like "5s"')
    if isinstance(value, (int, float)):
        if value < 0 or value != value or value in (float("inf"),):
            raise ValueError('expected a non-negative duration like "5s"')
        try:
            return float(value)
        except OverflowError:  # an int of 400 digits
            raise ValueError("duration too large") from None
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            seconds = float(m.group(1)) * _FACTOR[m.group(2)]
            if seconds == float("inf"):  # e.g. 400 digits: float() overflows
                raise ValueError("duration too large")
            return seconds
    raise ValueError('expected a duration like "5s"')


_DURATION_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0},
                              {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"}],
                    "description": 'seconds, or a string like "250ms", "5s", "2m"'}

# A pydantic field type: accepts 5, 2.5, "250ms", "5s", "2m"; holds seconds as a float.
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
