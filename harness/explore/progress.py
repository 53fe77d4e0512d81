"""The live line while explore runs: runs, failures, what it is doing (a shrink's step), time left.
On a terminal one line rewritten in place; in a log a plain line when the phase changes, and at
most every 10 s otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

LOG_EVERY_S = 10.0


class Progress:
    def __init__(self, stream: Any = None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.phase = ""
        self.shrink: Any = None
        self.last_log = 0.0
        self.shown = False

    def text(self, explorer: Any) -> str:
        parts = [f"runs {explorer.runs}", f"candidates {explorer.candidates}", f"failures {len(explorer.failures)}"]
        if explorer.errors:
            parts.append(f"run errors {explorer.errors}")
        phase = self.phase
        if explorer.shrinking and self.shrink is not None:
            phase += f" step {self.shrink.steps} (tried {self.shrink.checks}, {len(self.shrink.faults)} faults)"
        if phase:
            parts.append(phase)
        left = explorer.time_left()
        if left is not None:
            parts.append(f"{max(0, int(left)) // 60}m{max(0, int(left)) % 60:02d}s left")
        elif explorer.last is not None:
            parts.append(f"{max(0, explorer.last - explorer.candidates)} candidates left")
        return "explore: " + " · ".join(parts)

    def update(self, explorer: Any, phase: str | None = None, shrink: Any = None) -> None:
        if self.quiet:
            return
        changed = phase is not None and phase != self.phase
        if phase is not None:
            self.phase = phase
        if shrink is not None:
            self.shrink = shrink
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.text(explorer)[:160] + "\x1b[K")
            self.stream.flush()
            self.shown = True
        elif changed or now - self.last_log >= LOG_EVERY_S:
            self.last_log = now
            self.stream.write(self.text(explorer) + "\n")
            self.stream.flush()

    def say(self, text: str) -> None:
        """A line that stays (a failure found, an invariant not judged)."""
        if self.quiet:
            return
        if self.tty and self.shown:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.shown and not self.quiet:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
