"""Each run's child processes in a cgroup v2 of their own, so stopping the run kills all of them.

The orphan sweep (``harness/run/orphans.py``) finds what a killed run's children left behind by their
environment (``HARNESS_OWNER``) or their session; a process that both clears its environment and
calls ``setsid`` escapes both. A cgroup does not: a process cannot leave it without write access
to another cgroup, and ``cgroup.kill`` (Linux 5.14+) kills every process in it at once.

Where this works: a cgroup v2 hierarchy (``/sys/fs/cgroup`` on unified systems,
``/sys/fs/cgroup/unified`` on hybrid ones) and write access to the cgroup this process is in
(root, or a delegated subtree such as a systemd user service or ``systemd-run --user --scope``).
Elsewhere ``probe()`` says why in one line and the run goes on without (``UNAVAILABLE``).

    group = RunCgroup.create("run123")        # None when unavailable
    Popen(..., preexec_fn=group.join)           # the child enters before exec: nothing escapes
    group.kill(); group.remove()                # at the end of the run
    sweep_stale()                               # at start: groups of harness processes now dead
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass

PREFIX = "harness."
UNAVAILABLE = "process cgroups unavailable ({why}): a child that calls setsid and clears its environment " \
              "can outlive the run"


def _cgroup2_mounts() -> list[str]:
    mounts = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                sep = fields.index("-")
                if fields[sep + 1] == "cgroup2":
                    mounts.append(fields[4])
    except (OSError, ValueError, IndexError):
        pass
    return mounts


def _own_cgroup() -> str | None:
    """This process's path in the v2 hierarchy (the ``0::`` line of /proc/self/cgroup)."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return None


def default_parent() -> tuple[str | None, str]:
    """Where run groups would go (this process's own v2 cgroup) or why there is none."""
    mounts = _cgroup2_mounts()
    if not mounts:
        return None, "no cgroup v2 hierarchy mounted"
    own = _own_cgroup()
    if own is None:
        return None, "this process is in no cgroup v2"
    for mount in mounts:
        path = os.path.join(mount, own.lstrip("/"))
        if os.path.isfile(os.path.join(path, "cgroup.procs")):
            return path, ""
    return None, f"cgroup {own} not visible under {', '.join(mounts)}"


def probe(parent: str | None = None) -> tuple[str | None, str]:
    """``(parent, "")`` when a run group can be made under ``parent`` (default: this process's
    own cgroup), else ``(None, why)``. Tries for real: makes and removes an empty group."""
    why = ""
    if parent is None:
        parent, why = default_parent()
        if parent is None:
            return None, why
    test = os.path.join(parent, f"{PREFIX}probe-{os.getpid()}")
    try:
        os.mkdir(test)
    except OSError as e:
        return None, f"cannot create a cgroup under {parent}: {e.strerror}"
    try:
        # the kernel fills a new cgroup directory with its interface files; a plain directory stays empty
        if not os.path.isfile(os.path.join(test, "cgroup.procs")):
            return None, f"{parent} is not a cgroup v2 hierarchy"
        if not os.access(os.path.join(parent, "cgroup.procs"), os.W_OK):
            return None, f"no write access to {parent}/cgroup.procs (not delegated to this user)"
        return parent, ""
    finally:
        _rmdir(test)


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[19].decode()
    except (OSError, IndexError):
        return None


@dataclass
class RunCgroup:
    path: str

    @classmethod
    def create(cls, name: str, parent: str | None = None) -> "RunCgroup | None":
        """A new group ``harness.<pid>.<start time>.<name>`` under ``parent``, or None (see ``probe``)."""
        parent, _ = probe(parent)
        if parent is None:
            return None
        path = os.path.join(parent, f"{PREFIX}{os.getpid()}.{_start_time(os.getpid())}.{name}")
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        except OSError:
            return None
        return cls(path)

    def add(self, pid: int) -> None:
        """Move ``pid`` in (a child it already forked stays where it is: prefer ``join``)."""
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def join(self) -> None:
        """Move the calling process in; meant for ``preexec_fn`` (between fork and exec: async-signal-safe
        calls only, and everything the child starts afterwards is inside)."""
        fd = os.open(os.path.join(self.path, "cgroup.procs"), os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    def pids(self) -> list[int]:
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def kill(self, timeout: float = 5.0) -> list[int]:
        """SIGKILL everything in the group (``cgroup.kill``, else one by one after freezing it);
        waits until it is empty. Returns the pids that were in it."""
        pids = self.pids()
        if not pids:
            return []
        kill_file = os.path.join(self.path, "cgroup.kill")
        deadline = time.monotonic() + timeout
        if os.path.exists(kill_file):
            with open(kill_file, "w") as f:
                f.write("1")
        else:
            self._freeze(True)
        while time.monotonic() < deadline:
            left = self.pids()
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)
        self._freeze(False)
        return pids

    def _freeze(self, on: bool) -> None:
        try:
            with open(os.path.join(self.path, "cgroup.freeze"), "w") as f:
                f.write("1" if on else "0")
        except OSError:
            pass

    def remove(self) -> bool:
        """Remove the (empty) group; False when it still holds processes."""
        try:
            os.rmdir(self.path)
        except OSError as e:
            return e.errno == errno.ENOENT
        return True


def sweep_stale(parent: str | None = None) -> list[int]:
    """Kill and remove the run groups of harness processes that are gone (a SIGKILLed run's);
    returns the pids killed. Groups of live harness processes are left alone."""
    parent, _ = probe(parent)
    if parent is None:
        return []
    killed: list[int] = []
    for name in os.listdir(parent):
        if not name.startswith(PREFIX):
            continue
        owner, _, rest = name[len(PREFIX):].partition(".")
        started = rest.partition(".")[0]
        if not owner.isdigit() or _start_time(int(owner)) == started:
            continue  # a live owner (or not one of ours)
        group = RunCgroup(os.path.join(parent, name))
        killed += group.kill()
        group.remove()
    return killed


def startup_line(parent: str | None = None) -> str | None:
    """None when run groups work here; else the one line to print at start-up."""
    found, why = probe(parent)
    return None if found else UNAVAILABLE.format(why=why)
