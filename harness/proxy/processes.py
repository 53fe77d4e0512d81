"""Child processes the proxies need (toxiproxy-server, mitmdump): started on free loopback ports and
always stopped.

Three layers make sure nothing is left behind:
- ``ManagedProcess.stop()`` (called by every owner's ``stop`` / ``__exit__``): SIGTERM to the child's
  own process group, SIGKILL after a grace period;
- an ``atexit`` hook stops every process still running when the interpreter exits (Ctrl-C, a failed
  test session, an uncaught exception);
- the child is started with ``PR_SET_PDEATHSIG = SIGKILL``: if our process dies without running any
  Python (SIGKILL, a SIGTERM with no handler), the kernel kills the child too. Linux only; the signal
  fires when the *thread* that started the child exits, so start children from a long-lived thread
  (the main thread or an event-loop thread), never from a short-lived worker thread.

Children run in their own session, so a Ctrl-C in the terminal reaches only us and we stop them in
order.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO

_PR_SET_PDEATHSIG = 1
_live: set["ManagedProcess"] = set()
_live_lock = threading.Lock()

try:
    _libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    _prctl = _libc.prctl if _libc is not None else None
except (OSError, AttributeError):  # pragma: no cover - exotic libc
    _prctl = None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ManagedProcess:
    """One child process with its output in a log file (or discarded)."""

    def __init__(self, argv: list[str], *, name: str, log_path: str | None = None,
                 env: dict[str, str] | None = None, cwd: str | None = None, delete_log: bool = False):
        self.argv, self.name, self.log_path, self.env, self.cwd = argv, name, log_path, env, cwd
        self.delete_log = delete_log  # remove log_path on stop (a private temp file)
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> "ManagedProcess":
        self._log = open(self.log_path, "ab") if self.log_path else None
        out = self._log if self._log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=self.cwd, start_new_session=True,
                                     preexec_fn=_die_with_parent, close_fds=True)
        with _live_lock:
            _live.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def log_tail(self, limit: int = 2000) -> str:
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def stop(self, grace_s: float = 3.0) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:  # pragma: no cover - unkillable
                    pass
        elif proc is not None:
            self._signal(signal.SIGKILL)  # leader gone: make sure no grandchild of its group survives
        with _live_lock:
            _live.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.delete_log and self.log_path:
            try:
                os.unlink(self.log_path)
            except OSError:
                pass

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)  # its own session: the group id is its pid
        except (ProcessLookupError, PermissionError):
            pass


def wait_until(check, timeout_s: float, interval_s: float = 0.02, proc: ManagedProcess | None = None) -> bool:
    """Poll ``check()`` until true, the deadline passes, or ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        if proc is not None and not proc.alive:
            return False
        time.sleep(interval_s)
    return bool(check())


@atexit.register
def stop_all() -> None:
    """Stop every child still running (also registered with ``atexit``)."""
    with _live_lock:
        procs = list(_live)
    for p in procs:
        p.stop(grace_s=1.0)
