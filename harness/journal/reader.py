"""Read a run journal back as typed events."""

from __future__ import annotations

import os
from typing import Iterator

import orjson

from harness.journal.events import Event


class JournalCorrupt(ValueError):
    pass


def iter_events(source: str | os.PathLike[str] | bytes) -> Iterator[Event]:
    """Yield events in file order. A final line without its newline (a writer killed mid-write,
    which our writer never leaves) is reported, never silently parsed."""
    data = source if isinstance(source, bytes) else open(source, "rb").read()
    name = "<bytes>" if isinstance(source, bytes) else os.fspath(source)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        raise JournalCorrupt(f"{name}:{len(lines)}: incomplete last line")
    for no, line in enumerate(lines, 1):
        try:
            yield Event.from_dict(orjson.loads(line))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise JournalCorrupt(f"{name}:{no}: unparsable event: {e}") from None


def read_events(source: str | os.PathLike[str] | bytes) -> list[Event]:
    return list(iter_events(source))
