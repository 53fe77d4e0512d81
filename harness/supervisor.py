"""Every child process the harness starts (the target, redis-server, toxiproxy-server, mitmdump) is a
``Child``, and nothing is left behind:

- each child starts its own session (a Ctrl-C in the terminal reaches only us, and we stop the
  children in order) and carries ``HARNESS_OWNER`` in its environment; its session is noted for
  the orphan sweep until we stop it (``harness.orphans``: what a child forked and a killed harness
  left is found by the next run);
- ``Child.stop()``: SIGTERM to the child's process group, SIGKILL after a grace period, then a
  bounded wait; the group is killed even when its leader has already exited (what it forked);
- the live set: an ``atexit`` hook (and the CLI's signal handling, through ``stop_all``) stops every
  child still running (Ctrl-C, a failed test session, an uncaught exception);
- a cgroup v2 group (``harness.cgroups``) where the machine allows one: a child joins its run's
  group (``cgroup=``) or this process's session group before exec, so what it forks cannot escape
  by calling ``setsid`` and clearing its environment; stopping the run (or ``stop_all``) kills the
  group. Where cgroups are unavailable, ``cgroup_notice()`` is the one line that says the gap is open;
- ``PR_SET_PDEATHSIG = SIGKILL``: if we die without running any Python (SIGKILL, a SIGTERM with no
  handler), the kernel kills the child too. Linux only; the signal fires when the *thread* that
  started the child exits, so start children from a long-lived thread (the main thread or an event
  loop's thread), never from a short-lived worker thread.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Callable

from harness import cgroups, orphans

_PR_SET_PDEATHSIG = 1
_KILL_WAIT_S = 5.0  # after SIGKILL: only an unkillable (D-state) process takes longer

try:
    _libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    _prctl = _libc.prctl if _libc is not None else None
except (OSError, AttributeError):  # pragma: no cover - exotic libc
    _prctl = None


class ProcessError(RuntimeError):
    """A child could not be started or did not become ready; ``str()`` is one line."""


def _in_child(group: cgroups.RunCgroup | None) -> None:
    """Runs in the child between fork and exec: die with the thread that started us; enter the group."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if group is not None:
        group.join()


def die_with_parent() -> None:
    """A ``preexec_fn`` for a child not started as a ``Child``: killed by the kernel when the thread
    that started it exits (``PR_SET_PDEATHSIG``), so a SIGKILL of ours does not orphan it."""
    _in_child(None)


_session_lock = threading.Lock()
_session_group: cgroups.RunCgroup | None = None
_session_probed = False


def session_cgroup() -> cgroups.RunCgroup | None:
    """This process's group for children that belong to no run (Toxiproxy, mitmdump, test apps),
    made on first use; None where cgroups are unavailable."""
    global _session_group, _session_probed
    with _session_lock:
        if not _session_probed:
            _session_group, _session_probed = cgroups.RunCgroup.create("session"), True
        return _session_group


def release_session_cgroup() -> bool:
    """Remove this process's session group if it holds nothing any more (no kill: for a process that
    may leave through ``os._exit`` — a pytest-xdist worker — and so never reaches ``stop_all``).
    True when there is no group left."""
    global _session_group, _session_probed
    with _session_lock:
        group = _session_group
        if group is None:
            return True
        if group.pids() or not group.remove():
            return False
        _session_group, _session_probed = None, False
        return True


def cgroup_notice() -> str | None:
    """The one line to print at start-up when children cannot be put in a cgroup here, else None."""
    return cgroups.startup_line()


def kill_group(group: cgroups.RunCgroup | None) -> list[int]:
    """Kill what is left in ``group`` (what the children forked, setsid or not) and remove it."""
    if group is None:
        return []
    killed = group.kill()
    group.remove()
    return killed


def _adopt(pid: int) -> None:
    """Everything that must know about a new child (a cgroup for the run's children goes here too)."""
    orphans.note_session(pid)


def _release(pid: int) -> None:
    orphans.forget_session(pid)


class Child:
    """One child process, its output appended to ``log_path`` (or discarded). ``env`` is added to
    ours. ``stop_timeout``: seconds between SIGTERM and SIGKILL. ``delete_log``: remove ``log_path``
    on stop (a private temp file)."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                 log_path: str | None = None, delete_log: bool = False, stop_timeout: float = 5.0,
                 cgroup: cgroups.RunCgroup | None = None):
        self.name, self.argv, self.cwd, self.stop_timeout = name, argv, cwd, stop_timeout
        self.cgroup = cgroup
        self.env = {**os.environ, **(env or {}), orphans.ENV: orphans.owner_tag()}
        self.log_path, self.delete_log = log_path, delete_log
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Child {self.name} pid={self.pid} {'running' if self.running else 'stopped'}>"

    def start(self) -> "Child":
        if not self.argv:
            raise ProcessError(f"{self.name}: empty command")
        if shutil.which(self.argv[0]) is None and not os.path.exists(self.argv[0]):
            raise ProcessError(f"{self.name}: command not found: {self.argv[0]}")
        self._log = open(self.log_path, "ab") if self.log_path else None
        try:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                         stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                         start_new_session=True, close_fds=True,
                                         preexec_fn=functools.partial(_in_child, self.cgroup or session_cgroup()))
        except OSError as e:
            self._close_log()
            raise ProcessError(f"{self.name}: cannot start {self.argv[0]}: {e.strerror}") from None
        _adopt(self.proc.pid)
        with _live_lock:
            _live.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def tail(self, lines: int = 5, sep: str = " | ") -> str:
        """The last ``lines`` lines of the log (empty without one)."""
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 4000))
                return sep.join(f.read().decode("utf-8", "replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def exited(self) -> ProcessError:
        """The error for a child that exited before it was ready (with the end of its log)."""
        tail = self.tail()
        return ProcessError(f"{self.name} exited with code {self.returncode} before it was ready"
                            + (f": {tail}" if tail else ""))

    def stop(self, kill: bool = False, grace_s: float | None = None) -> int | None:
        """SIGTERM (SIGKILL with ``kill``) to the group, SIGKILL after the grace period; returns the
        exit code. Safe to call twice (the second call signals nothing: the id may be reused by
        then), or for a child never started."""
        proc = self.proc
        if proc is None or self not in live():
            return None if proc is None else proc.returncode  # never started, or stopped already
        if proc.poll() is None:
            self._signal(signal.SIGKILL if kill else signal.SIGTERM)
            _wait(proc, 0 if kill else self.stop_timeout if grace_s is None else grace_s)
        self._signal(signal.SIGKILL)  # what the leader forked must not survive it
        _wait(proc, _KILL_WAIT_S)
        self._forget()
        return proc.returncode

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)  # its own session: the group id is its pid
        except (ProcessLookupError, PermissionError):
            pass

    def _forget(self) -> None:
        with _live_lock:
            if self not in _live:
                return
            _live.discard(self)
        assert self.proc is not None
        _release(self.proc.pid)
        self._close_log()
        if self.delete_log and self.log_path:
            try:
                os.unlink(self.log_path)
            except OSError:
                pass

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _wait(proc: subprocess.Popen, timeout: float) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass


_live: set[Child] = set()
_live_lock = threading.Lock()


def live() -> list[Child]:
    """The children started and not yet stopped."""
    with _live_lock:
        return list(_live)


@atexit.register
def stop_all(grace_s: float = 1.0) -> None:
    """Stop every child still running, all at once: SIGTERM, at most ``grace_s`` for all of them,
    then SIGKILL (``atexit`` and the CLI's signal handling call this as the last resort)."""
    children = live()
    for child in children:
        if child.running:
            child._signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        assert child.proc is not None
        _wait(child.proc, max(0.0, deadline - time.monotonic()))
        child.stop(kill=True)
    global _session_group, _session_probed
    with _session_lock:
        group, _session_group, _session_probed = _session_group, None, False
    kill_group(group)


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.02,
               child: Child | None = None) -> bool:
    """Poll ``check()`` until true, the deadline passes, or ``child`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        if child is not None and not child.running:
            return False
        time.sleep(interval_s)
    return bool(check())
