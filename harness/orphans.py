"""Processes a killed harness left behind.

The kernel kills the harness's direct children with it (``PR_SET_PDEATHSIG``), but not what they
forked: a target started as ``sh -c 'python app.py'``, a server with worker processes. So every child
the harness starts carries ``HARNESS_OWNER=<pid>:<start time>`` in its environment, which its own
children inherit. ``sweep()`` kills each process of this user whose owner is gone (the pid is dead,
or now names another process started at another time). Live owners' processes are never touched.

A process can clear its environment (``env -i``, some daemons' launchers). Every child also starts
its own session, and the harness notes it in ``$TMPDIR/harness-<uid>/sessions/<session id>`` (owner
and the leader's start time) until it stops the child; ``sweep()`` also kills every process left in
a noted session whose owner is gone. What calls ``setsid`` again escapes both."""

from __future__ import annotations

import os
import signal
import tempfile

ENV = "HARNESS_OWNER"
_KEY = ENV.encode() + b"="


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()  # fields after "(comm)": state, ppid, pgrp, session…
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19].decode() if fields is not None and len(fields) > 19 else None  # field 22 of stat


def owner_tag() -> str:
    """This process as an owner: ``<pid>:<start time>`` (the pair survives pid reuse)."""
    return f"{os.getpid()}:{_start_time(os.getpid())}"


def _alive(tag: str) -> bool:
    owner, _, started = tag.partition(":")
    return owner.isdigit() and _start_time(int(owner)) == started


def _sessions_dir() -> str:
    path = os.path.join(tempfile.gettempdir(), f"harness-{os.getuid()}", "sessions")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def note_session(leader: int) -> None:
    """Remember that this process started session ``leader`` (a child started with a new session)."""
    path = os.path.join(_sessions_dir(), str(leader))
    with open(path + ".tmp", "w") as f:
        f.write(f"{owner_tag()} {_start_time(leader)}\n")
    os.replace(path + ".tmp", path)


def forget_session(leader: int) -> None:
    try:
        os.unlink(os.path.join(_sessions_dir(), str(leader)))
    except OSError:
        pass


def _owner_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:  # gone, or not ours to read
        return None
    for item in env.split(b"\0"):
        if item.startswith(_KEY):
            return item[len(_KEY):].decode(errors="replace")
    return None


def _own_pids() -> list[int]:
    uid, me, pids = os.getuid(), os.getpid(), []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != me:
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    pids.append(int(name))
            except OSError:
                pass
    return pids


def _kill(pid: int, killed: list[int]) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    except OSError:
        pass


def _dead_sessions() -> set[int]:
    """Noted sessions whose owner is gone (their notes are removed)."""
    dead: set[int] = set()
    directory = _sessions_dir()
    for name in os.listdir(directory):
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(directory, name)) as f:
                tag, leader_started = f.read().split()
        except (OSError, ValueError):
            continue
        if _alive(tag):
            continue
        now = _start_time(int(name))
        if now is None or now == leader_started:  # a live pid of another start time: the id was reused
            dead.add(int(name))
        forget_session(int(name))
    return dead


def sweep() -> list[int]:
    """SIGKILL the processes of dead owners; returns their pids. Linux only (no /proc: nothing)."""
    if not os.path.isdir("/proc"):
        return []
    killed: list[int] = []
    dead_sessions = _dead_sessions()
    for pid in _own_pids():
        tag = _owner_of(pid)
        if tag is not None:
            if not _alive(tag):
                _kill(pid, killed)
            continue  # a live harness's process: never by session
        fields = _stat_fields(pid) if dead_sessions else None
        if fields is not None and len(fields) > 3 and int(fields[3]) in dead_sessions:
            _kill(pid, killed)
    return killed
