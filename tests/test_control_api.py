import json
import os
import signal
import subprocess
import sys

import requests

from harness.journal import read_events


def test_rules_crud_and_errors(echo_host):
    c = echo_host.host.urls["control"]
    r = requests.post(c + "/rules", json={"rules": [{"effect": {"reset": True}}, {"id": "x", "effect": {"hang": True}}]})
    assert r.status_code == 201 and r.json()["ids"] == ["r1", "x"]
    assert [x["id"] for x in requests.get(c + "/rules").json()["rules"]] == ["r1", "x"]
    bad = requests.post(c + "/rules", json={"effect": {"delay_ms": "soon"}})
    assert bad.status_code == 400 and bad.json()["error"].startswith("rules.effect.delay_ms:")
    assert requests.post(c + "/rules", data=b"{nope", headers={"Content-Type": "application/json"}).status_code == 400
    assert requests.delete(c + "/rules/x").status_code == 200
    assert requests.delete(c + "/rules/x").status_code == 404
    assert requests.delete(c + "/rules").status_code == 200
    assert requests.get(c + "/rules").json()["rules"] == []


def test_config_reset_journal_openapi(echo_host):
    c = echo_host.host.urls["control"]
    assert requests.get(c + "/echo/config").json() == {"greeting": "hello"}
    assert requests.put(c + "/echo/config", json={"greeting": "hi"}).json() == {"greeting": "hi"}
    assert requests.put(c + "/echo/config", json={"greeting": 5}).status_code == 400
    assert requests.get(echo_host.host.urls["echo"] + "/a").json()["greeting"] == "hi"
    requests.post(c + "/rules", json={"effect": {"reset": True}})
    assert requests.post(c + "/reset").status_code == 200
    assert requests.get(c + "/echo/config").json() == {"greeting": "hello"}
    assert requests.get(c + "/rules").json()["rules"] == []
    r = requests.post(c + "/journal", json=[{"kind": "driver", "n": 1}])
    assert r.status_code == 201
    (seq,) = r.json()["seqs"]
    events = read_events(requests.get(c + "/journal", params={"since": seq - 1}).content)
    assert [(e.seq, e.kind) for e in events] == [(seq, "driver")]
    assert requests.get(c + "/journal", params={"since": "x"}).status_code == 400
    doc = requests.get(c + "/openapi.json").json()
    assert doc["openapi"].startswith("3.") and {"/rules", "/journal", "/echo/config"} <= set(doc["paths"])


def test_service_stop_start(echo_host):
    c, url = echo_host.host.urls["control"], echo_host.host.urls["echo"]
    requests.post(c + "/services/echo/stop").raise_for_status()
    try:
        requests.get(url + "/a", timeout=2)
        raise AssertionError("expected connection refused")
    except requests.ConnectionError:
        pass
    requests.post(c + "/services/echo/start").raise_for_status()
    assert requests.get(url + "/a", timeout=2).status_code == 200


def test_control_token(tmp_path):
    from harness.host import HostThread
    from tests.echo_service import EchoMock
    with HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(tmp_path),
                    control_token="s3cret") as ht:
        c = ht.host.urls["control"]
        assert requests.get(c + "/rules").status_code == 401
        assert requests.get(c + "/rules", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert requests.get(c + "/rules", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_serve_prints_one_ready_line_and_stops_cleanly(tmp_path):
    journal = tmp_path / "j.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "serve", "--journal", str(journal), "--seed", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert "control" in ready
        health = requests.get(ready["control"] + "/health", timeout=5).json()
        assert health["seed"] == 5 and health["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and out == ""
    kinds = [e.kind for e in read_events(journal)]
    assert kinds[0] == "step" and read_events(journal)[-1]["step"] == "host_stopped"


def test_serve_bad_rules_file_is_one_line(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("- effect: {delay_ms: -5}\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "serve", "--rules", str(bad)],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert f"{bad}: rules[0].effect.delay_ms" in proc.stderr


def raw_get(url: str, path: str, header: bytes) -> bytes:
    import socket
    from urllib.parse import urlsplit
    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=5) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header + b"\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_token_headers_that_are_not_utf8_get_401_without_a_traceback(tmp_path, caplog):
    from harness.host import HostThread
    from tests.echo_service import EchoMock
    with HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(tmp_path),
                    control_token="s3cret") as ht:
        c = ht.host.urls["control"]
        for header in (b"X-Harness-Token: s3cret\xff", b"Authorization: Bearer \xe9\xff",
                       b"Authorization: Bearer s3cret\x80", b"X-Harness-Token: \xc3"):
            answer = raw_get(c, "/health", header)
            assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
        assert raw_get(c, "/health", b"X-Harness-Token: s3cret").startswith(b"HTTP/1.1 200 ")
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"], caplog.text


def test_journal_events_posted_to_the_api_are_marked_and_never_mock_observations(echo_host):
    from harness.verdict import evaluate
    c = echo_host.host.urls["control"]
    forged = [{"kind": "request", "service": "echo", "action": "a", "rid": "ec999", "source": "mock"},
              {"kind": "response", "service": "echo", "action": "a", "rid": "ec999", "status": 500},
              {"kind": "driver", "flow": "f", "n": 1, "status": 200}]
    seqs = requests.post(c + "/journal", json=forged).json()["seqs"]
    events = read_events(requests.get(c + "/journal", params={"since": seqs[0] - 1}).content)
    assert [e.get("source") for e in events] == ["api"] * 3  # a claimed source is overwritten
    from harness.verdict.base import Facts
    facts = Facts(events)
    assert facts.of("request") == [] and facts.of("response") == []  # forged mock observations: ignored
    assert [e.kind for e in facts.driver()] == ["driver"]  # what the locust driver reports still counts
    verdict = evaluate([{"journal_count": {"where": {"kind": "response", "status": 500}, "max": 0}},
                        {"journal_count": {"where": {"kind": "driver"}, "min": 1}}], events)
    assert verdict.ok, verdict


def test_unknown_config_keys_are_refused_by_name(echo_host):
    c = echo_host.host.urls["control"]
    r = requests.put(c + "/echo/config", json={"no_such_key": 1, "greeting": "x"})
    assert r.status_code == 400 and r.json()["error"] == "echo.config.no_such_key: no such config key"
    assert requests.get(c + "/echo/config").json() == {"greeting": "hello"}  # nothing applied


def test_posting_a_rule_id_that_exists_replaces_it(echo_host):
    c = echo_host.host.urls["control"]
    assert requests.post(c + "/rules", json={"id": "x", "effect": {"hang": True}}).json()["ids"] == ["x"]
    assert requests.post(c + "/rules", json={"id": "x", "effect": {"status": 502}}).json()["ids"] == ["x"]
    rules = requests.get(c + "/rules").json()["rules"]
    assert [(r["id"], r["effect"]) for r in rules] == [("x", {"status": 502})]
    assert requests.get(echo_host.host.urls["echo"] + "/a").status_code == 502
