"""Locust's handle on the stage process (see ``harness.load.stage``): start it, read the run context,
say go, say finish, read the result. Works under gevent (its subprocess pipes are cooperative)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from harness.supervisor import die_with_parent

READY_TIMEOUT_S = 120.0   # the stage's own target / redis / proxy timeouts come first
RESULT_TIMEOUT_S = 600.0  # settle (the invariants' deadlines) + stopping everything


class StageError(RuntimeError):
    pass


class StageProcess:
    def __init__(self, options: dict[str, Any], cwd: str | None = None):
        self.options = options
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.ready: dict[str, Any] | None = None
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.started_test = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> dict[str, Any]:
        """Start the stage and wait until the target is up; returns the ready message (``ctx``…)."""
        # its own session: Ctrl-C reaches locust, which then finishes the stage in order; and it dies
        # with locust: a master killed while the stage judges a long run must not leave it running
        self.proc = subprocess.Popen([sys.executable, "-m", "harness.load.stage", json.dumps(self.options)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=self.cwd,
                                     start_new_session=True, text=True, bufsize=1, preexec_fn=die_with_parent)
        msg = self._read(READY_TIMEOUT_S)
        if msg is None or not msg.get("ready"):
            self.result = (msg or {}).get("result")
            self.error = ((self.result or {}).get("error") or (msg or {}).get("error")
                          or "the stage exited before it was ready")
            self._reap()
            raise StageError(self.error)
        self.ready = msg
        return msg

    def go(self, info: dict[str, Any] | None = None) -> None:
        if self.started_test or self.proc is None:
            return
        self.started_test = True
        self._send({"cmd": "go", "locust": info or {}})

    def finish(self, expect_driver: int, locust: dict[str, Any], interrupted: str | None = None
               ) -> dict[str, Any] | None:
        """Tell the stage the load is over (``interrupted``: by that signal, before its run time
        ended); wait for its verdict (the run summary)."""
        if self.proc is None:
            return self.result
        if self.result is None:
            self._send({"cmd": "finish", "expect_driver": expect_driver, "locust": locust,
                        "interrupted": interrupted})
            msg = self._read(RESULT_TIMEOUT_S)
            self.result = (msg or {}).get("result")
            if self.result is None:
                self.error = (msg or {}).get("error") or "the stage exited without a verdict"
        self._reap()
        return self.result

    def abort(self) -> None:
        self._reap(kill=True)

    def _send(self, obj: dict[str, Any]) -> None:
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def _read(self, timeout: float) -> dict[str, Any] | None:
        import gevent
        with gevent.Timeout(timeout, False):
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    return None
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
        self.error = f"the stage did not answer within {timeout:g}s"
        return None

    def _reap(self, kill: bool = False) -> None:
        proc = self.proc
        if proc is None:
            return
        try:
            proc.stdin.close()  # EOF: a stage still running stops the run and cleans up
        except OSError:
            pass
        try:
            proc.wait(timeout=1 if kill else 30)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # the stage's own handler stops its children
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()
