"""A SIGKILLed harness takes its direct children with it (PR_SET_PDEATHSIG) but not what they forked;
the next harness run (or test session starting an app) kills those orphans, and only those."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil

from harness.run import orphans
from harness.run.processes import ChildProcess
from tests.waiting import wait_until

OWNER = textwrap.dedent("""
    import sys, time
    from harness.run.processes import ChildProcess
    child = ChildProcess("forker", ["sh", "-c", "sleep 600 & echo $! > " + sys.argv[1] + "; wait"])
    child.start()
    time.sleep(600)
""")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_grandchildren_of_a_killed_harness_are_swept_and_live_ones_are_not(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(pidfile)])
    mine = ChildProcess("live", ["sleep", "600"])  # owned by this (live) process
    mine.start()
    try:
        grandchild = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip()))
        assert orphans._owner_of(grandchild) == f"{owner.pid}:{orphans._start_time(owner.pid)}"
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
