"""``harness serve --proxies``: proxied URLs in the ready line, faults through both proxies, and
nothing left running after Ctrl-C."""

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest
import requests

from harness.journal import read_events
from harness.supervisor import port_open
from mocks.solver import DEFAULT_KEY as KEY

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def children(pid):
    out = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.update(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def serve(tmp_path, *args, env=None):
    return subprocess.Popen([sys.executable, "-m", "harness", "serve", "--seed", "5",
                             "--journal", str(tmp_path / "journal.jsonl"), *args],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def ready_line(proc, timeout=40):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no ready line"
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return json.loads(line)


def test_proxied_urls_faults_through_both_proxies_and_ctrl_c_stops_everything(tmp_path):
    proc = serve(tmp_path, "--services", "solver", "--proxies", "--integration", "127.0.0.1:9",
                 "--link", "integration->redis=127.0.0.1:6379")
    try:
        urls = ready_line(proc)
        _faults_through_both_proxies(tmp_path, urls)
        _ctrl_c_stops_every_proxy_process(proc, urls)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _faults_through_both_proxies(tmp_path, urls):
    assert urls["solver"] == urls["links"]["integration->solver"] != urls["solver_direct"]
    assert urls["solver_mitm"] not in (urls["solver"], urls["solver_direct"])
    assert set(urls["links"]) == {"integration->solver", "solver->integration", "integration->redis"}
    assert requests.get(urls["toxiproxy"] + "/version", timeout=5).json()["version"] == "2.12.0"
    names = set(requests.get(urls["toxiproxy"] + "/proxies", timeout=5).json())
    assert f"{urls['run_id']}.integration-solver" in names
    params = {"key": KEY, "method": "userrecaptcha", "googlekey": "g", "pageurl": "https://e.test"}
    assert requests.get(urls["solver"] + "/in.php", params=params, timeout=5).text.startswith("OK|")
    control = urls["control"]
    rules = [{"match": {"link": "integration->solver"}, "effect": {"toxic": "latency",
                                                                   "attributes": {"latency": 300}}},
             {"match": {"action": "in.php"}, "effect": {"drop_response": True}, "schedule": {"times": 1}}]
    assert requests.post(control + "/rules", json=rules, timeout=5).status_code == 201
    _wait_for(tmp_path, lambda e: e.kind == "toxic" and e["op"] == "added")
    with pytest.raises(requests.ConnectionError):
        requests.get(urls["solver"] + "/in.php", params=params, timeout=5)   # dropped at mitm
    t0 = time.monotonic()
    r = requests.get(urls["solver"] + "/in.php", params=params, timeout=5)  # resubmit, slowed by Toxiproxy
    assert r.text.startswith("OK|") and time.monotonic() - t0 >= 0.28
    dropped = next(e for e in _events(tmp_path) if e.kind == "proxy.flow" and e["outcome"] == "dropped")
    _wait_for(tmp_path, lambda e: e.kind == "proxy.flow" and e.seq > dropped.seq)  # pass-through: batched
    flows = [e["outcome"] for e in _events(tmp_path) if e.kind == "proxy.flow"]
    assert flows == ["forwarded", "dropped", "forwarded"]


def _events(tmp_path):
    return read_events(str(tmp_path / "journal.jsonl"))


def _wait_for(tmp_path, pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(pred(e) for e in _events(tmp_path)):
            return
        time.sleep(0.02)
    raise AssertionError("event not journaled")


def _ctrl_c_stops_every_proxy_process(proc, urls):
    kids = children(proc.pid)
    assert len(kids) >= 2  # toxiproxy-server + mitmdump
    ports = [int(u.rsplit(":", 1)[1]) for u in (urls["toxiproxy"], urls["solver"], urls["solver_mitm"])]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(k) for k in kids):
        time.sleep(0.05)
    assert not any(alive(k) for k in kids)
    assert not any(port_open("127.0.0.1", p) for p in ports)


def test_missing_toxiproxy_binary_is_one_line_and_exit_2(tmp_path):
    proc = serve(tmp_path, "--services", "solver", "--proxies",
                 env={"TOXIPROXY_SERVER": str(tmp_path / "missing"), "TOXIPROXY_URL": ""})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and out == ""
    lines = [ln for ln in err.splitlines() if ln.startswith("harness serve:")]
    assert len(lines) == 1 and "make setup" in lines[0]
    assert "Traceback" not in err


def test_tls_mocks_stay_https_through_toxiproxy_and_mitmproxy(tmp_path):
    proc = serve(tmp_path, "--services", "solver", "--proxies", "--tls")
    try:
        urls = ready_line(proc)
        assert urls["solver"].startswith("https://") and urls["solver_mitm"].startswith("https://")
        params = {"key": KEY, "action": "getbalance"}
        r = requests.get(urls["solver"] + "/res.php", params=params, timeout=5, verify=urls["tls_ca"])
        assert r.text == requests.get(urls["solver_direct"] + "/res.php", params=params, timeout=5,
                                      verify=urls["tls_ca"]).text
        _wait_for(tmp_path, lambda e: e.kind == "proxy.flow")  # a pass-through flow: journaled in the background
        flows = [e for e in _events(tmp_path) if e.kind == "proxy.flow"]
        assert [(f["action"], f["outcome"]) for f in flows] == [("res.php", "forwarded")]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
