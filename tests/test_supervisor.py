"""The one process supervisor: every child in its own session, noted for the orphan sweep while it
runs, stopped with its whole group (TERM, then KILL after a bounded grace), and in the live set until
then."""

from __future__ import annotations

import os
import time

import pytest

from harness import orphans, supervisor
from harness.supervisor import Child, ProcessError
from tests.waiting import wait_until

# ignores SIGTERM, forks a grandchild into its group, reports the grandchild's pid
STUBBORN = "trap '' TERM; sleep 600 & echo $! > {pidfile}; while :; do sleep 0.1; done"


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def stubborn(tmp_path, name="stubborn", **kw) -> tuple[Child, int]:
    pidfile = tmp_path / f"{name}.pid"
    child = Child(name, ["sh", "-c", STUBBORN.format(pidfile=pidfile)], **kw).start()
    grandchild = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip()))
    return child, grandchild


def test_a_child_runs_in_its_own_session_noted_for_the_sweep_until_stopped(tmp_path):
    child = Child("sleeper", ["sleep", "600"], log_path=str(tmp_path / "log")).start()
    try:
        assert os.getsid(child.pid) == child.pid and os.getsid(0) != child.pid
        note = os.path.join(orphans._sessions_dir(), str(child.pid))
        assert os.path.exists(note)
        assert child in supervisor.live() and child.running
        with open(f"/proc/{child.pid}/environ", "rb") as f:
            assert f"{orphans.ENV}={orphans.owner_tag()}".encode() in f.read().split(b"\0")
    finally:
        child.stop()
    assert not os.path.exists(note) and child not in supervisor.live()
    assert child.returncode == -15 and gone(child.pid)


def test_stop_kills_the_whole_group_after_a_bounded_grace(tmp_path):
    child, grandchild = stubborn(tmp_path, stop_timeout=0.3)
    started = time.monotonic()
    assert child.stop() == -9  # SIGTERM ignored: killed after the grace
    assert time.monotonic() - started < 3
    assert gone(child.pid) and wait_until(lambda: gone(grandchild))
    assert child.stop() == -9  # twice is fine


def test_stop_all_stops_every_live_child_at_once(tmp_path):
    children = [stubborn(tmp_path, name=f"c{i}") for i in range(3)]
    started = time.monotonic()
    supervisor.stop_all(grace_s=1.0)
    assert time.monotonic() - started < 2.5  # one grace for all, not one each
    for child, grandchild in children:
        assert not child.running and gone(child.pid) and wait_until(lambda: gone(grandchild))
        assert child not in supervisor.live()


def test_a_child_that_exits_early_says_so_with_its_log(tmp_path):
    log = tmp_path / "early.log"
    child = Child("early", ["sh", "-c", "echo first; echo 'bad flag --x' >&2; exit 3"], log_path=str(log)).start()
    assert not supervisor.wait_until(lambda: False, 5, child=child)
    err = child.exited()
    assert str(err) == "early exited with code 3 before it was ready: first | bad flag --x"
    child.stop()
    assert log.exists()  # a log we were given is kept


def test_a_private_log_is_deleted_on_stop(tmp_path):
    log = tmp_path / "private.log"
    child = Child("quiet", ["sh", "-c", "echo hi"], log_path=str(log), delete_log=True).start()
    wait_until(lambda: not child.running)
    assert child.tail() == "hi"
    child.stop()
    assert not log.exists()


def test_a_missing_command_is_one_line(tmp_path):
    with pytest.raises(ProcessError, match=r"^nothing: command not found: /no/such/binary$"):
        Child("nothing", ["/no/such/binary"]).start()
    not_executable = tmp_path / "plain.txt"
    not_executable.write_text("")
    with pytest.raises(ProcessError, match=r"^plain: cannot start .*plain.txt: Permission denied$"):
        Child("plain", [str(not_executable)]).start()
    assert not [c for c in supervisor.live() if c.name in ("nothing", "plain")]


def test_the_load_stage_dies_with_a_killed_locust(tmp_path):
    """The load stage is started by locust, not as a Child; a locust master SIGKILLed while its stage
    judged a long run left the stage running at full CPU. The stage's preexec now asks the kernel to
    kill it with its parent; here a parent started the same way is SIGKILLed."""
    import signal
    import subprocess
    import sys
    pidfile = tmp_path / "stage.pid"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "from harness.supervisor import die_with_parent\n"
        "p = subprocess.Popen(['sleep', '600'], start_new_session=True, preexec_fn=die_with_parent)\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(600)\n")], cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    wait_until(lambda: pidfile.exists() and pidfile.read_text(), 10.0, "the child started")
    child = int(pidfile.read_text())
    assert not gone(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait(5)
    wait_until(lambda: gone(child), 5.0, "the child killed with its parent")


def test_the_stage_process_is_started_to_die_with_its_parent(monkeypatch):
    from harness.load import stage_client
    seen = {}

    class Stop(Exception):
        pass

    def popen(*args, **kwargs):
        seen.update(kwargs)
        raise Stop()
    monkeypatch.setattr(stage_client.subprocess, "Popen", popen)
    with pytest.raises(Stop):
        stage_client.StageProcess({}, cwd=".").start()
    assert seen["preexec_fn"] is supervisor.die_with_parent
