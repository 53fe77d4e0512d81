"""The proxies' processes: found, started on free ports, and always stopped (error, Ctrl-C, kill -9)."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from harness.host import HostThread
from harness.proxy import toxiproxy_server
from harness.supervisor import port_open
from harness.proxy.stack import ProxyStack
from harness.proxy.toxiproxy_client import ToxiproxyClient, ToxiproxyError
from harness.proxy.toxiproxy_server import ToxiproxyNotFound, ToxiproxyServer, find_server_binary
from tests.echo_service import EchoMock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gone(pid, within=5.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie we do not own still "exists": check its state
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def api_port(server):
    return int(server.url.rsplit(":", 1)[1])


def test_server_starts_on_a_free_port_and_stops_on_error_too():
    with pytest.raises(RuntimeError, match="boom"):
        with ToxiproxyServer() as s:
            pid, port = s.process.pid, api_port(s)
            assert s.owned and s.version == "2.12.0" and port_open("127.0.0.1", port)
            raise RuntimeError("boom")
    assert gone(pid) and not port_open("127.0.0.1", port)


def test_missing_binary_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)
    monkeypatch.delenv("TOXIPROXY_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(toxiproxy_server, "TOOLS_BINARY", tmp_path / "nothing-here")
    with pytest.raises(ToxiproxyNotFound) as e:
        ToxiproxyServer().start()
    msg = str(e.value)
    assert "\n" not in msg and "make setup" in msg and "TOXIPROXY_URL" in msg
    monkeypatch.setenv("TOXIPROXY_SERVER", str(tmp_path / "nope"))
    with pytest.raises(ToxiproxyNotFound, match="make setup"):
        find_server_binary()


def test_an_existing_server_from_toxiproxy_url_is_used_and_left_running(monkeypatch):
    with ToxiproxyServer() as mine:
        monkeypatch.setenv("TOXIPROXY_URL", mine.url)
        with ToxiproxyServer() as theirs:
            assert not theirs.owned and theirs.url == mine.url
        assert ToxiproxyClient(mine.url).version() == "2.12.0"  # still there
    monkeypatch.setenv("TOXIPROXY_URL", "http://127.0.0.1:1")
    with pytest.raises(ToxiproxyError, match="TOXIPROXY_URL=http://127.0.0.1:1"):
        ToxiproxyServer().start()


def test_client_errors_are_ours_with_the_server_message_not_keyerror():
    with ToxiproxyServer() as s:
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        try:
            with pytest.raises(ToxiproxyError) as e:
                s.client.create("x.a-b", "127.0.0.1:9", listen=f"127.0.0.1:{taken.getsockname()[1]}")
            assert e.value.status == 500 and "address already in use" in str(e.value)
        finally:
            taken.close()
        s.client.create("x.a-b", "127.0.0.1:9")
        with pytest.raises(ToxiproxyError) as e:
            s.client.create("x.a-b", "127.0.0.1:9")
        assert e.value.status == 409 or "exists" in str(e.value).lower()
        with pytest.raises(ToxiproxyError) as e:
            s.client.add_toxic("x.a-b", "t", "no_such_toxic")
        assert e.value.status == 400 and "invalid toxic type" in str(e.value)
        with pytest.raises(ToxiproxyError) as e:
            s.client.remove_toxic("x.a-b", "missing")
        assert e.value.status == 404
        url = s.url
    with pytest.raises(ToxiproxyError, match="unreachable"):
        ToxiproxyClient(url, timeout_s=1).proxies()


def test_two_servers_in_one_process_each_get_their_own_calls():
    """toxiproxy-python keeps host/port process-global; our wrapper must still address each server."""
    with ToxiproxyServer() as a, ToxiproxyServer() as b:
        a.client.create("only-a.x-y", "127.0.0.1:9")
        assert "only-a.x-y" in a.client.proxies() and "only-a.x-y" not in b.client.proxies()


_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from harness.proxy.toxiproxy_server import ToxiproxyServer
    s = ToxiproxyServer().start()
    print(s.process.pid, s.url, flush=True)
    time.sleep(60)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_the_server_dies_with_the_process_that_started_it(sig, tmp_path):
    """kill -9 (parent-death signal), Ctrl-C (atexit) and SIGTERM: no toxiproxy-server is left behind."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD.format(repo=REPO)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        line = child.stdout.readline().split()
        assert line, "child did not start a server"
        pid, url = int(line[0]), line[1]
        assert port_open("127.0.0.1", int(url.rsplit(":", 1)[1]))
        child.send_signal(sig)
        child.wait(10)
        assert gone(pid), f"toxiproxy-server {pid} survived {sig.name} of its parent"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)


def test_stack_stop_removes_its_proxies_and_the_server_it_started(tmp_path):
    with HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(tmp_path)) as ht:
        stack = ProxyStack(ht.host, integration="127.0.0.1:9")
        urls = ht.call(stack.start)
        pid = stack.server.process.pid
        assert set(urls["links"]) == {"integration->echo"}  # echo sends no callbacks
        assert urls["echo_direct"] == ht.host.urls["echo"] and urls["echo"] != urls["echo_direct"]
        ht.call(stack.stop)
        ht.call(stack.stop)  # twice is fine
        assert gone(pid) and not port_open("127.0.0.1", int(urls["echo"].rsplit(":", 1)[1]))


def test_stack_on_a_shared_server_leaves_no_proxy_behind(tmp_path):
    with ToxiproxyServer() as shared, \
            HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(tmp_path)) as ht:
        stack = ProxyStack(ht.host, toxiproxy_url=shared.url, run_id="lifecycle-test",
                           extra_links={"integration->redis": "127.0.0.1:6379"})
        urls = ht.call(stack.start)
        names = set(shared.client.proxies())
        assert {"lifecycle-test.integration-echo", "lifecycle-test.integration-redis"} <= names
        assert urls["links"]["integration->redis"].startswith("127.0.0.1:")
        ht.call(stack.stop)
        assert not [n for n in shared.client.proxies() if n.startswith("lifecycle-test.")]
        assert shared.process.running


def test_bad_link_and_run_names_are_refused(tmp_path):
    with HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(tmp_path)) as ht:
        with pytest.raises(ValueError, match="unknown service"):
            ProxyStack(ht.host, mitm=["nope"])
        stack = ProxyStack(ht.host, run_id="bad id!")
        with pytest.raises(ValueError, match="run id"):
            ht.call(stack.start)
        assert stack.server.process is None  # what it started for the failed attempt is stopped


def test_cleanup_command_removes_a_dead_runs_proxies(capsys):
    from harness.proxy.__main__ import main
    with ToxiproxyServer() as s:
        s.client.create("deadrun.integration-solver", "127.0.0.1:9")
        s.client.create("liverun.integration-solver", "127.0.0.1:9")
        assert main(["--toxiproxy", s.url, "cleanup", "deadrun"]) == 0
        assert "removed 1 proxies of run deadrun" in capsys.readouterr().out
        assert list(s.client.proxies()) == ["liverun.integration-solver"]
        assert main(["--toxiproxy", s.url, "list"]) == 0
        assert "liverun.integration-solver" in capsys.readouterr().out
    assert main(["--toxiproxy", "http://127.0.0.1:1", "list"]) == 2
