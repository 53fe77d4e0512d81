"""Append-only JSON Lines run journal.

Each event is serialised with orjson and handed to the kernel with one ``write(2)`` on an
``O_APPEND`` descriptor before ``write`` returns, so an event that a mock acknowledged on the wire
is already in the file: killing the process (even SIGKILL) loses nothing that was acknowledged.
Only the event being written at the instant of a SIGKILL can be cut short (the kernel may stop a
write that spans pages); its write never returned, nothing was answered for it, and readers skip
that torn tail (``reader.torn_tail``). No flush thread; the only events kept in user space are
those ``hold`` numbers: a mock's request, decisions and answer, until its server writes the events
behind all the answers of one event-loop turn in one ``write(2)`` (``flush``), then sends those
answers (``mocks/base/server.py``). Any other event written meanwhile takes them along first.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

import orjson

from harness.journal import kinds

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


_RESERVED = frozenset(("seq", "ts", "t"))


def _default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray)):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def json_safe(obj: Any) -> Any:
    """Strings that cannot be UTF-8 (lone surrogates) with those characters escaped as ``\\udXXX``,
    integers beyond 64 bits as text."""
    if isinstance(obj, str):
        return obj if obj.isascii() else obj.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(obj, int) and not isinstance(obj, bool) and not -(2**63) <= obj < 2**64:
        return str(obj)
    if isinstance(obj, dict):
        return {json_safe(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    return obj


class Journal:
    """Thread-safe; ``write`` assigns the next sequence number and returns it.

    ``strict`` (default: env ``HARNESS_JOURNAL_STRICT``) refuses an event whose kind or fields are not
    declared (``kinds.UndeclaredEvent``), before it takes a sequence number."""

    INDEX_EVERY = 1024

    def __init__(self, path: str | os.PathLike[str], *, start: float | None = None, strict: bool | None = None):
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        self._lock = threading.Lock()
        self._seq = 0
        self._offset = 0
        self._index: list[int] = [0]  # byte offset of event seq k*INDEX_EVERY+1
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._held: list[tuple[dict[str, Any], bytes]] = []  # numbered, not yet written (``hold``)
        self.started = time.monotonic() if start is None else start
        self._started_ns = round(self.started * 1e9)
        self.strict = kinds.strict_from_env() if strict is None else strict

    @property
    def closed(self) -> bool:
        return self._fd < 0

    @property
    def seq(self) -> int:
        return self._seq

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``listener(event)`` after each write (in the writer's thread). Returns unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def problem(self, event: dict[str, Any]) -> str | None:
        """Why ``write`` would refuse ``event`` (None when it would not, and always outside strict mode)."""
        return kinds.problem(event) if self.strict else None

    def write(self, event: dict[str, Any]) -> int:
        return self._append(event, hold=False)

    def hold(self, event: dict[str, Any]) -> int:
        """Number ``event`` now and write it together with the next event, in the same ``write(2)``,
        or at ``flush()``, whichever comes first (a mock holds a request until its answer is
        journaled: one write per request/answer pair). Nothing is reordered: any later event, from
        any thread, is written after it in the same write. ``read_since`` and ``close`` flush first,
        listeners hear of it when it is written. A process killed in between loses the held event
        with no gap: nothing after it was written, and no answer was sent for it."""
        return self._append(event, hold=True)

    def flush(self) -> None:
        """Write the held events now (a no-op when there are none)."""
        with self._lock:
            held, self._held = self._held, []
            if held:
                self._write(held)
        self._tell(held)

    def _append(self, event: dict[str, Any], hold: bool) -> int:
        if self.strict:
            kinds.check(event)
        with self._lock:
            if self._fd < 0:
                raise RuntimeError(f"journal {self.path} is closed")
            self._seq = seq = self._seq + 1
            # whole microseconds (from integer nanoseconds: round(x, 6) on floats costs more than the rest);
            # the journal's own keys always win: an event cannot forge its place in the order
            record = {"seq": seq, "ts": time.time_ns() // 1000 / 1e6,
                      "t": (time.monotonic_ns() - self._started_ns) // 1000 / 1e6,
                      **(event if _RESERVED.isdisjoint(event) else
                         {k: v for k, v in event.items() if k not in _RESERVED})}
            try:
                line = orjson.dumps(record, default=_default, option=_OPTS) + b"\n"
            except TypeError:  # from a client: a lone surrogate (JSON "\ud800", a %-escape), a 100-digit int
                line = orjson.dumps(json_safe(record), default=_default, option=_OPTS) + b"\n"
            if hold:
                self._held.append((record, line))
                return seq
            if self._held:
                held, self._held = self._held, []
                held.append((record, line))
            else:
                held = [(record, line)]
            self._write(held)
        if self._listeners:
            self._tell(held)
        return seq

    def _write(self, held: list[tuple[dict[str, Any], bytes]]) -> None:
        """Under the lock: these lines in one write(2), in order."""
        data = held[0][1] if len(held) == 1 else b"".join(line for _, line in held)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        for record, line in held:
            if record["seq"] % self.INDEX_EVERY == 0:
                self._index.append(self._offset + len(line))
            self._offset += len(line)

    def _tell(self, held: list[tuple[dict[str, Any], bytes]]) -> None:
        if self._listeners:
            for record, _ in held:
                for listener in tuple(self._listeners):
                    listener(record)

    def read_since(self, since: int = 0, limit: int | None = None) -> bytes:
        """Raw JSONL of events with seq > since (in order), read back from the file."""
        self.flush()
        with self._lock:
            end = self._offset
        block = min(since // self.INDEX_EVERY, len(self._index) - 1)
        skip = since - block * self.INDEX_EVERY
        with open(self.path, "rb") as f:
            f.seek(self._index[block])
            data = f.read(end - self._index[block])
        lines = data.splitlines(keepends=True)[skip:]
        if limit is not None:
            lines = lines[:limit]
        return b"".join(lines)

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
