"""A SIGKILLed harness takes its direct children with it (PR_SET_PDEATHSIG) but not what they forked;
the next harness run (or test session starting an app) kills those orphans, and only those."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from harness import orphans
from harness.supervisor import Child
from tests.waiting import wait_until

OWNER = textwrap.dedent("""
    import sys, time
    from harness.supervisor import Child
    child = Child("forker", ["sh", "-c", sys.argv[2] + "sleep 600 & echo $! > " + sys.argv[1] + "; wait"])
    child.start()
    time.sleep(600)
""")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("prefix", ["", "exec env -i "], ids=["inherited env", "env cleared"])
def test_the_grandchildren_of_a_killed_harness_are_swept_and_live_ones_are_not(tmp_path, prefix):
    """With its environment cleared the grandchild carries no owner: its session gives it away."""
    pidfile = tmp_path / "grandchild.pid"
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(pidfile), prefix])
    mine = Child("live", ["sleep", "600"])  # owned by this (live) process
    mine.start()
    try:
        grandchild = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip()))
        want = None if prefix else f"{owner.pid}:{orphans._start_time(owner.pid)}"
        # $! is known before the background job has exec'd `env -i`: wait until it has
        wait_until(lambda: orphans._owner_of(grandchild) == want)
        orphans.sweep()  # its owner is alive: untouched
        assert not gone(grandchild) and mine.running
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        orphans.sweep()
        wait_until(lambda: gone(grandchild))
        assert mine.running  # the sweep spared the live owner's child
    finally:
        mine.stop(kill=True)
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if pidfile.exists() and not gone(int(pidfile.read_text())):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_a_noted_session_whose_id_was_reused_is_left_alone():
    """A dead owner's note naming a session id that now belongs to another process (the pid was
    reused: another start time) must not kill that process's session."""
    env = {k: v for k, v in os.environ.items() if k != orphans.ENV}  # not ours: no owner to spare it
    other = subprocess.Popen(["sleep", "600"], env=env, start_new_session=True)
    try:
        note = os.path.join(orphans._sessions_dir(), str(other.pid))
        with open(note, "w") as f:  # as a dead harness wrote it for an earlier process with that pid
            f.write(f"{os.getpid()}:0 1\n")  # our pid with another start time: an owner that is gone
        orphans.sweep()
        assert not os.path.exists(note)
        with pytest.raises(subprocess.TimeoutExpired):  # still alive: not killed
            other.wait(0.5)
    finally:
        other.kill()
        other.wait()
