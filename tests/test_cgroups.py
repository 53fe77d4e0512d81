"""Run cgroups (``harness/cgroups.py``): a process that calls ``setsid`` and clears its environment
cannot escape a run's cgroup; where cgroups are unavailable that is said in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from harness import cgroups

PARENT, WHY = cgroups.probe()
needs_cgroups = pytest.mark.skipif(PARENT is None, reason=f"no cgroup v2 subtree here: {WHY}")

# a target that forks a grandchild which leaves its session and clears its environment: the escape
# the orphan sweep misses (issue 17 item 7)
ESCAPE = "setsid env -i sh -c 'sleep 60' & echo $!; sleep 60"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def environ(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return None


def wait_for(check, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


@needs_cgroups
def test_everything_a_child_starts_is_killed_with_its_run_group():
    group = cgroups.RunCgroup.create(f"test-{os.getpid()}")
    assert group is not None and os.path.isdir(group.path)
    child = subprocess.Popen(["sh", "-c", ESCAPE], stdout=subprocess.PIPE, text=True, preexec_fn=group.join,
                             start_new_session=True)
    try:
        escapee = int(child.stdout.readline())
        # $! is known before the job has called setsid and exec'd env -i: wait until it has
        assert wait_for(lambda: os.getsid(escapee) == escapee and environ(escapee) == b"")
        assert escapee in group.pids() and child.pid in group.pids()
        killed = group.kill()
        assert child.pid in killed and escapee in killed
        assert wait_for(lambda: not alive(escapee)) and child.wait(timeout=5) == -9
        assert group.pids() == [] and group.remove() and not os.path.exists(group.path)
    finally:
        if os.path.isdir(group.path):
            group.kill()
            group.remove()
        child.stdout.close()


@needs_cgroups
def test_groups_of_dead_harness_processes_are_swept():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = cgroups.RunCgroup(os.path.join(PARENT, f"{cgroups.PREFIX}{dead}.1.test"))
    os.mkdir(stale.path)
    live = cgroups.RunCgroup.create(f"live-{os.getpid()}")
    procs = [subprocess.Popen(["sleep", "60"], preexec_fn=g.join) for g in (stale, live)]
    try:
        assert cgroups.sweep_stale() == [procs[0].pid]
        assert procs[0].wait(timeout=5) == -9 and not os.path.exists(stale.path)
        assert procs[1].poll() is None and live.pids() == [procs[1].pid]  # its owner (we) is alive
    finally:
        for g in (stale, live):
            if os.path.isdir(g.path):
                g.kill()
                g.remove()
        for p in procs:
            p.wait(timeout=5)


def test_unavailable_is_one_line_and_nothing_is_created(tmp_path):
    parent, why = cgroups.probe(str(tmp_path))  # a plain directory, not a cgroup fs
    assert parent is None and why == f"{tmp_path} is not a cgroup v2 hierarchy"
    assert cgroups.RunCgroup.create("x", parent=str(tmp_path)) is None
    assert cgroups.sweep_stale(str(tmp_path)) == []
    line = cgroups.startup_line(str(tmp_path))
    assert line.startswith("process cgroups unavailable (") and "setsid" in line and "\n" not in line
    assert os.listdir(tmp_path) == []  # the probe cleaned up after itself
    missing = str(tmp_path / "nope")
    assert cgroups.probe(missing)[0] is None and "cannot create a cgroup" in cgroups.probe(missing)[1]


def test_available_here_means_no_startup_line():
    assert (cgroups.startup_line() is None) == (PARENT is not None)


def _escapee(tmp_path, **kw):
    """A supervised child whose grandchild calls setsid and clears its environment."""
    from harness.supervisor import Child
    out = tmp_path / "escape.out"
    child = Child("escaper", ["sh", "-c", ESCAPE], log_path=str(out), **kw).start()
    assert wait_for(lambda: out.exists() and out.read_text().strip())
    grandchild = int(out.read_text().split()[0])
    assert wait_for(lambda: environ(grandchild) == b"")  # it has cleared its environment
    return child, grandchild


@needs_cgroups
def test_a_supervised_childs_escaped_grandchild_dies_with_the_run_group(tmp_path):
    from harness.supervisor import kill_group
    group = cgroups.RunCgroup.create(f"test-{os.getpid()}")
    child, grandchild = _escapee(tmp_path, cgroup=group)
    child.stop()
    assert alive(grandchild), "stopping the child's process group does not reach a setsid grandchild"
    assert grandchild in kill_group(group)
    assert wait_for(lambda: not alive(grandchild)) and not os.path.exists(group.path)


@needs_cgroups
def test_a_child_of_no_run_is_in_the_session_group_which_stop_all_kills(tmp_path):
    from harness import supervisor
    child, grandchild = _escapee(tmp_path)
    session = supervisor.session_cgroup()
    assert session is not None and grandchild in session.pids()
    supervisor.stop_all()
    assert not child.running and wait_for(lambda: not alive(grandchild))
    assert not os.path.exists(session.path)


def test_without_cgroups_children_still_start_and_the_gap_is_one_line(tmp_path, monkeypatch):
    from harness import supervisor
    monkeypatch.setattr(cgroups, "probe", lambda parent=None: (None, "no cgroup v2 hierarchy mounted"))
    monkeypatch.setattr(supervisor, "_session_group", None)
    monkeypatch.setattr(supervisor, "_session_probed", False)
    child, grandchild = _escapee(tmp_path)
    try:
        assert supervisor.session_cgroup() is None
        notice = supervisor.cgroup_notice()
        assert notice is not None and "\n" not in notice and "setsid" in notice
    finally:
        child.stop()
        os.kill(grandchild, 9)


@needs_cgroups
def test_a_pytest_process_leaving_through_os_exit_leaves_no_empty_session_group(tmp_path):
    # an xdist worker that does not finish in time is ended by execnet with os._exit: no atexit hook
    # runs, so the plugin removes the empty group when the session ends
    record = tmp_path / "group.txt"
    (tmp_path / "test_inner.py").write_text(
        "import sys\n"
        "from harness import supervisor\n"
        "def test_child():\n"
        "    child = supervisor.Child('sleeper', [sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "    child.start()\n"
        f"    open({str(record)!r}, 'w').write(supervisor.session_cgroup().path)\n"
        "    child.stop()\n")
    script = (f"import os, pytest\nrc = pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:xdist', {str(tmp_path)!r}])\n"
              "os._exit(int(rc))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    path = record.read_text()
    assert path and not os.path.exists(path), f"{path} left behind"


@needs_cgroups
def test_releasing_the_session_group_keeps_one_that_holds_a_process(tmp_path):
    from harness import supervisor
    child, grandchild = _escapee(tmp_path)
    session = supervisor.session_cgroup()
    child.stop()
    assert not supervisor.release_session_cgroup() and os.path.exists(session.path)
    assert grandchild in supervisor.kill_group(session)
    supervisor.stop_all()
