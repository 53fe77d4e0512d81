"""Cleanup: Ctrl-C during ``harness run`` and ``harness load`` (with a target, redis-server, mitmdump and
Toxiproxy links) and during a pytest session using the plugin leaves no child process, no listening port and no
Toxiproxy proxy behind; a SIGKILLed run takes its children with it and the next run removes the
proxies it left on a shared Toxiproxy server. (``tests/test_runner.py::test_ctrl_c_stops_everything``
covers Ctrl-C with a target only.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from harness.proxy.toxiproxy_server import ToxiproxyServer

ROOT = Path(__file__).resolve().parents[1]

LONG_RUN = """\
name: long-with-links
extends: {base}
links:
  - integration->redis
  - {{name: integration->solver, mitm: true}}
  - solver->integration
traffic:
  - name: solve
    duration: 60s
    rate: 4
    request: {{method: POST, path: /solve, json: {{sitekey: "6Le-k-${{n}}", pageurl: "https://shop.example/login"}}}}
"""

NEXT_RUN = """\
name: next-run
services: {captcha: {}}
links: [integration->captcha]
timeline:
  - {at: 0s, note: nothing to do}
"""


@pytest.fixture()
def shared_toxiproxy(tmp_path) -> Iterator[ToxiproxyServer]:
    """A Toxiproxy server the runs share (TOXIPROXY_URL), so their proxies outlive them if leaked."""
    with ToxiproxyServer(log_path=str(tmp_path / "toxiproxy.log")) as server:
        yield server


def env_with(server: ToxiproxyServer) -> dict[str, str]:
    return {**os.environ, "TOXIPROXY_URL": server.url}


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def listening_ports(procs: list[psutil.Process]) -> set[int]:
    ports = set()
    for p in procs:
        try:
            ports |= {c.laddr.port for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return ports


def alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return out


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait(what, timeout: float = 45.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {getattr(what, '__name__', what)}")


def start_long_run(tmp_path: Path, server: ToxiproxyServer, command: str = "run") -> tuple[subprocess.Popen, dict]:
    """``harness run`` (or ``harness load``) of a 60 s scenario with a target, redis-server, mitmdump and
    three Toxiproxy links on ``server``; returns once traffic flows. Its own session, like a terminal job."""
    sc = tmp_path / "long.yaml"
    sc.write_text(LONG_RUN.format(base=ROOT / "scenarios/_targets/solver_client.yaml"))
    reports = tmp_path / "reports"
    extra = ["-q"] if command == "run" else ["--users", "2", "--run-time", "60s", "--wait", "0.2:0.3"]
    proc = subprocess.Popen([sys.executable, "-m", "harness", command, str(sc), "--report-dir", str(reports), *extra],
                            cwd=ROOT, env=env_with(server), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def running() -> dict | None:
        journals = list(reports.glob("*/journal.jsonl"))
        if not journals:
            return None
        events = [json.loads(line) for line in journals[0].read_bytes().splitlines()]
        ready = [e for e in events if e.get("step") == "links_ready"]
        if not ready or sum(e["kind"] == "driver" for e in events) < 2:
            return None
        kids = descendants(proc.pid)
        names = " ".join(" ".join(k.cmdline()) for k in kids if k.is_running())
        if "redis-server" not in names or "solver_client" not in names or "mitmdump" not in names:
            return None
        return {"run_id": ready[0]["run_id"], "kids": kids}

    try:
        state = wait(running)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    state["ports"] = listening_ports([psutil.Process(proc.pid), *state["kids"]])
    state["proxies"] = [n for n in server.client.proxies() if n.startswith(state["run_id"] + ".")]
    assert len(state["proxies"]) == 3, state["proxies"]
    return proc, state


def ctrl_c(proc: subprocess.Popen) -> None:
    """What a terminal does on Ctrl-C: SIGINT to the foreground process group."""
    os.killpg(proc.pid, signal.SIGINT)


def loopback_only(proc: subprocess.Popen, state: dict, server: ToxiproxyServer) -> None:
    addrs = set()
    for p in [psutil.Process(proc.pid), *state["kids"]]:
        addrs |= {c.laddr.ip for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    addrs |= {p.listen.rsplit(":", 1)[0] for n, p in server.client.proxies().items() if n in state["proxies"]}
    assert addrs == {"127.0.0.1"}, addrs


def ours(port: int, tmp_path: Path) -> list[str]:
    """Processes still listening on ``port`` that belong to the stopped run (their command line or
    environment names its folder). Another xdist worker may legitimately reuse a freed port number."""
    owners = []
    for c in psutil.net_connections("tcp"):
        if c.status != psutil.CONN_LISTEN or c.laddr.port != port or c.pid is None:
            continue
        try:
            p = psutil.Process(c.pid)
            text = " ".join(p.cmdline()) + " " + " ".join(p.environ().values())
        except psutil.Error:
            continue
        if str(tmp_path) in text:
            owners.append(f"{c.pid} {' '.join(p.cmdline())[:120]}")
    return owners


def left_nothing(state: dict, server: ToxiproxyServer, tmp_path: Path) -> None:
    assert wait(lambda: not alive(state["kids"]) or None, timeout=10)
    assert not [(p, o) for p in state["ports"] if port_open(p) for o in ours(p, tmp_path)]
    assert not [n for n in server.client.proxies() if n.startswith(state["run_id"] + ".")]


def test_ctrl_c_during_run_with_links_leaves_nothing(tmp_path, shared_toxiproxy):
    proc, state = start_long_run(tmp_path, shared_toxiproxy)
    try:
        loopback_only(proc, state, shared_toxiproxy)  # every listener of the run binds 127.0.0.1
    finally:
        ctrl_c(proc)
        assert proc.wait(timeout=60) == 130
    left_nothing(state, shared_toxiproxy, tmp_path)


def test_ctrl_c_during_load_with_links_leaves_nothing(tmp_path, shared_toxiproxy):
    proc, state = start_long_run(tmp_path, shared_toxiproxy, "load")
    ctrl_c(proc)
    assert proc.wait(timeout=60) in (0, 1, 130)   # locust stops the run; the verdict may still be given
    left_nothing(state, shared_toxiproxy, tmp_path)


def test_sigkilled_run_takes_its_children_and_the_next_run_removes_its_proxies(tmp_path, shared_toxiproxy):
    proc, state = start_long_run(tmp_path, shared_toxiproxy)
    os.kill(proc.pid, signal.SIGKILL)  # the harness process only
    proc.wait(timeout=10)
    # the kernel kills the target, redis-server and mitmdump with it (PR_SET_PDEATHSIG)
    assert wait(lambda: not alive(state["kids"]) or None, timeout=10), alive(state["kids"])
    child_ports = listening_ports(state["kids"]) | state["ports"]
    proxy_ports = {p.port for n, p in shared_toxiproxy.client.proxies().items() if n in state["proxies"]}
    assert not [p for p in child_ports - proxy_ports if port_open(p)]
    # a dead run cannot delete its proxies on a shared server: they are still there, still listening
    left = [n for n in shared_toxiproxy.client.proxies() if n.startswith(state["run_id"] + ".")]
    assert sorted(left) == sorted(state["proxies"]) and all(port_open(p) for p in proxy_ports)
    # ...until the next run on that server starts its own links
    nxt = tmp_path / "next.yaml"
    nxt.write_text(NEXT_RUN)
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(nxt), "--report-dir", str(tmp_path / "r2")],
                          cwd=ROOT, env=env_with(shared_toxiproxy), capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert not [n for n in shared_toxiproxy.client.proxies() if n.startswith(state["run_id"] + ".")]
    assert not [p for p in proxy_ports if port_open(p)]
    journal = next((tmp_path / "r2").glob("*/journal.jsonl")).read_text()
    assert '"step":"stale_proxies_removed"' in journal


PYTEST_SESSION = """\
import os, pathlib, time

def test_hold(harness, captcha_mock, link):
    ln = link("integration->captcha", mitm=True)
    pathlib.Path(os.environ["HOLD_READY"]).write_text(ln.url)
    time.sleep(120)
"""


def test_ctrl_c_during_a_pytest_session_with_the_plugin_leaves_nothing(tmp_path, shared_toxiproxy):
    (tmp_path / "test_hold.py").write_text(PYTEST_SESSION)
    ready = tmp_path / "ready"
    env = {**env_with(shared_toxiproxy), "HOLD_READY": str(ready)}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                             str(tmp_path / "test_hold.py")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait(lambda: ready.exists() and ready.read_text(), timeout=60)
        kids = descendants(proc.pid)
        ports = listening_ports([psutil.Process(proc.pid), *kids])
        ours = [n for n in shared_toxiproxy.client.proxies() if f"-{proc.pid}-" in n]
        assert any("mitmdump" in " ".join(k.cmdline()) for k in kids) and len(ports) >= 4 and ours
        ctrl_c(proc)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "KeyboardInterrupt" in out, out[-2000:]
    assert wait(lambda: not alive(kids) or None, timeout=10)
    assert not [p for p in ports if port_open(p)]
    assert not [n for n in shared_toxiproxy.client.proxies() if f"-{proc.pid}-" in n]


def test_stale_cleanup_never_touches_live_or_foreign_proxies(shared_toxiproxy):
    from harness.proxy.toxiproxy_links import cleanup_stale
    c = shared_toxiproxy.client
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    c.create(f"run{dead.pid}-abcdef.integration-solver", "127.0.0.1:9")       # dead run: removed
    c.create(f"pytest-gw1-{dead.pid}-ab12.integration-chat", "127.0.0.1:9")   # dead pytest worker: removed
    c.create(f"run{os.getppid()}-abcdef.integration-solver", "127.0.0.1:9")   # live process: kept
    c.create("myrun.integration-solver", "127.0.0.1:9")                        # not ours to judge: kept
    assert cleanup_stale(c) == sorted([f"pytest-gw1-{dead.pid}-ab12.integration-chat",
                                       f"run{dead.pid}-abcdef.integration-solver"])
    assert sorted(c.proxies()) == sorted([f"run{os.getppid()}-abcdef.integration-solver", "myrun.integration-solver"])
