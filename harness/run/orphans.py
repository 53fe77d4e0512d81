"""Processes a killed harness left behind.

The kernel kills the harness's direct children with it (``PR_SET_PDEATHSIG``), but not what they
forked: a target started as ``sh -c 'python app.py'``, a server with worker processes. So every child
the harness starts carries ``HARNESS_OWNER=<pid>:<start time>`` in its environment, which its own
children inherit. ``sweep()`` kills each process of this user whose owner is gone (the pid is dead,
or now names another process started at another time). Live owners' processes are never touched."""

from __future__ import annotations

import os
import signal

ENV = "HARNESS_OWNER"
_KEY = ENV.encode() + b"="


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rsplit(b")", 1)[-1].split()[19].decode()  # field 22, counted after "(comm)"


def owner_tag() -> str:
    """This process as an owner: ``<pid>:<start time>`` (the pair survives pid reuse)."""
    return f"{os.getpid()}:{_start_time(os.getpid())}"


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


def sweep() -> list[int]:
    """SIGKILL the processes of dead owners; returns their pids. Linux only (no /proc: nothing)."""
    if not os.path.isdir("/proc"):
        return []
    uid, me, killed = os.getuid(), os.getpid(), []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
        except OSError:
            continue
        tag = _owner_of(pid)
        if tag is None:
            continue
        owner, _, started = tag.partition(":")
        if owner.isdigit() and _start_time(int(owner)) == started:
            continue  # its harness is alive
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except OSError:
            pass
    return killed
