"""Read a run journal back as typed events."""

from __future__ import annotations

import os
from typing import Iterator

import orjson

from harness.journal.events import Event


class JournalCorrupt(ValueError):
    pass


def torn_tail(data: bytes) -> bytes:
    """The bytes after the last newline: non-empty only when a writer was killed inside ``write(2)``.

    The kernel may stop a write that spans pages when SIGKILL arrives, so the event being written at
    that instant can be cut short. Its write never returned, so no mock answered for it: it is not
    part of the journal, and readers skip it (``strict=True`` reports it instead)."""
    return data[data.rfind(b"\n") + 1:]


def iter_events(source: str | os.PathLike[str] | bytes, strict: bool = False) -> Iterator[Event]:
    """Yield events in file order. Every complete line must parse; a torn last line (see
    ``torn_tail``) is skipped, or reported with ``strict=True``."""
    data = source if isinstance(source, bytes) else open(source, "rb").read()
    name = "<bytes>" if isinstance(source, bytes) else os.fspath(source)
    lines = data.split(b"\n")
    if lines[-1] != b"" and strict:
        raise JournalCorrupt(f"{name}:{len(lines)}: incomplete last line")
    lines.pop()  # b"" after the final newline, or the torn tail
    for no, line in enumerate(lines, 1):
        try:
            yield Event.from_dict(orjson.loads(line))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise JournalCorrupt(f"{name}:{no}: unparsable event: {e}") from None


def read_events(source: str | os.PathLike[str] | bytes, strict: bool = False) -> list[Event]:
    return list(iter_events(source, strict))
