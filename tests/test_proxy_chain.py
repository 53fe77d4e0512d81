"""The one proxy-chain builder: the pytest fixtures' way (opened empty, links added on demand) gets the
same mitmproxy as serve and the runner (the mock's certificate for TLS clients, the local CA
upstream), and the proxy layer's errors are its own, turned into one line by the runner."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import requests

from harness.host import HostThread
from harness.journal import read_events
from harness.proxy.errors import ProxyError, ProxyOptionError
from harness.proxy.mitm import MitmError
from harness.proxy.stack import ProxyStack
from harness.proxy.toxiproxy_client import ToxiproxyError
from harness.proxy.toxiproxy_server import ToxiproxyNotFound, ToxiproxyServer
from harness.run.runner import RunOptions, run_scenario
from harness.scenario.model import Scenario
from harness.supervisor import live
from tests.echo_service import EchoMock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def server():
    with ToxiproxyServer() as s:
        yield s


def test_links_added_on_demand_through_mitm_keep_the_mocks_certificate(server, tmp_path):
    """What ``link(..., mitm=True)`` does, against a TLS host: the client verifies the mock's own
    certificate through Toxiproxy and mitmdump (mitmdump's generated one would fail)."""
    with HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(tmp_path), tls=True) as ht:
        stack = ProxyStack(ht.host, server=server, mitm_dir=str(tmp_path / "mitm"))
        assert stack.open() == [] and stack.links is not None and not stack.links.names()
        ht.call(stack.start_driver)
        run_id = stack.run_id
        try:
            link = stack.add_link("integration->echo", stack.mitm_url("echo"))
            r = requests.get(link.url("https") + "/hi", params={"a": "1"}, timeout=10, verify=ht.host.ctx.tls_ca)
            assert r.json() == {"greeting": "hello", "echo": {"a": "1"}}
            deadline = time.monotonic() + 5  # a pass-through flow is journaled in the background
            while not (flows := [e for e in read_events(ht.host.journal.read_since(0)) if e.kind == "proxy.flow"]) \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
            assert [(f["link"], f["outcome"]) for f in flows] == [("integration->echo", "forwarded")]
        finally:
            ht.call(stack.stop_driver)
            stack.close()
        assert not [n for n in server.client.proxies() if n.startswith(f"{run_id}.")]
        assert stack.mitm is None and server.client is not None  # the given server is not ours to stop

def test_bad_options_are_refused_by_name(tmp_path):
    with HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(tmp_path)) as ht:
        with pytest.raises(ProxyOptionError, match=r"^upstream echo='nohost': expected an http:// or https:// URL$"):
            ProxyStack(ht.host, upstreams={"echo": "nohost"})
        with pytest.raises(ProxyOptionError, match=r"^upstream 'nohost': expected host:port or a URL$"):
            ProxyStack(ht.host, extra_links={"integration->redis": "nohost"})
        with pytest.raises(ProxyOptionError, match=r"^proxies: unknown service\(s\) nope \(have: echo\)$"):
            ProxyStack(ht.host, mitm=["nope"])


def test_the_proxy_layer_raises_its_own_errors():
    for error in (MitmError, ToxiproxyNotFound, ToxiproxyError, ProxyOptionError):
        assert issubclass(error, ProxyError)
    assert issubclass(ProxyOptionError, ValueError)
    for path, _, files in os.walk(os.path.join(REPO, "harness", "proxy")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(path, name)) as f:
                    assert "CliError" not in f.read(), f"{name} raises the CLI's error"


def test_a_missing_mitmdump_fails_the_run_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MITMDUMP", str(tmp_path / "no-mitmdump"))
    scenario = Scenario.model_validate({"name": "no-mitm", "services": {"captcha": {}},
                                        "links": [{"name": "integration->captcha", "mitm": True}]})
    before = set(live())
    result = asyncio.run(run_scenario(scenario, RunOptions(report_dir=str(tmp_path))))
    assert result.error == f"mitmdump: command not found: {tmp_path / 'no-mitmdump'}"
    assert set(live()) == before  # the chain stopped the toxiproxy-server it started
