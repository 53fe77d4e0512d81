"""The shared request pipeline, with real clients on real sockets."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from harness.journal import read_events


def add(ht, *rules):
    r = requests.post(ht.host.urls["control"] + "/rules", json=list(rules), timeout=5)
    assert r.status_code == 201, r.text
    return r.json()["ids"]


def events(ht, kind=None):
    evs = read_events(ht.host.journal.read_since(0))
    return [e for e in evs if kind is None or e.kind == kind]


def test_normal_request_is_journaled_both_sides(echo_host):
    url = echo_host.host.urls["echo"]
    r = requests.get(url + "/hello?x=1", timeout=5)
    assert r.json() == {"greeting": "hello", "echo": {"x": "1"}}
    req, resp = events(echo_host, "request")[0], events(echo_host, "response")[0]
    assert (req.action, req["params"], req["rid"]) == ("hello", {"x": "1"}, resp["rid"])
    assert resp["status"] == 200 and resp["rule"] is None and resp.seq > req.seq


def test_protocol_error_status_and_body_effects(echo_host):
    url = echo_host.host.urls["echo"]
    (rid,) = add(echo_host, {"match": {"action": "hello"}, "effect": {"error": "Boom"}, "schedule": {"times": 1}})
    assert requests.get(url + "/hello", timeout=5).json()["error"] == "Boom"
    assert requests.get(url + "/hello", timeout=5).json()["greeting"] == "hello"
    add(echo_host, {"effect": {"status": 503, "body": "<html>busy</html>"}})
    r = requests.get(url + "/hello", timeout=5)
    assert r.status_code == 503 and r.headers["Content-Type"].startswith("text/html") and "busy" in r.text
    shaped = [e for e in events(echo_host, "response") if e["rule"] == rid]
    assert len(shaped) == 1


def test_delay_is_real(echo_host):
    add(echo_host, {"effect": {"delay_ms": 300}})
    t0 = time.monotonic()
    requests.get(echo_host.host.urls["echo"] + "/x", timeout=5)
    assert time.monotonic() - t0 >= 0.3


def test_reset_is_a_tcp_reset(echo_host):
    add(echo_host, {"effect": {"reset": True}})
    with pytest.raises(requests.ConnectionError) as e:
        requests.get(echo_host.host.urls["echo"] + "/x", timeout=5)
    assert "reset" in str(e.value).lower()
    assert events(echo_host, "response")[-1]["outcome"] == "reset"


def test_hang_until_client_gives_up(echo_host):
    add(echo_host, {"effect": {"hang": True}})
    t0 = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.get(echo_host.host.urls["echo"] + "/x", timeout=0.5)
    assert time.monotonic() - t0 >= 0.5
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not events(echo_host, "response"):
        time.sleep(0.05)
    ev = events(echo_host, "response")[-1]
    assert ev["outcome"] == "hung" and 0.4 < ev["hung_s"] < 3


def test_partial_body_is_truncated_on_the_wire(echo_host):
    add(echo_host, {"effect": {"partial_body": 10}})
    host, port = echo_host.host.urls["echo"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1])
    assert len(body) == 10 < length


def test_bad_request_is_answered_by_the_service(echo_host):
    r = requests.get(echo_host.host.urls["echo"] + "/bad", timeout=5)
    assert r.status_code == 400 and r.json() == {"error": "bad"}


class _Receiver:
    def __init__(self):
        self.seen = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.seen.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *a):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cb"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    r = _Receiver()
    yield r
    r.close()


def notify(ht, url, cid="1"):
    return requests.get(ht.host.urls["echo"] + "/notify", params={"url": url, "id": cid}, timeout=10).json()


def test_callbacks_drop_duplicate_forge_refused(echo_host, receiver):
    assert notify(echo_host, receiver.url) == {"attempts": ["delivered"]}
    add(echo_host, {"match": {"action": "ping", "params": {"id": "2"}}, "effect": {"callback": "drop"}},
        {"match": {"action": "ping", "params": {"id": "3"}}, "effect": {"callback": "duplicate", "count": 2}},
        {"match": {"action": "ping", "params": {"id": "4"}}, "effect": {"callback": "wrong_id"}},
        {"match": {"action": "ping", "params": {"id": "5"}}, "effect": {"callback": "refused"}})
    assert notify(echo_host, receiver.url, "2") == {"attempts": []}
    assert notify(echo_host, receiver.url, "3") == {"attempts": ["delivered"] * 3}
    assert notify(echo_host, receiver.url, "4") == {"attempts": ["delivered"]}
    assert notify(echo_host, receiver.url, "5") == {"attempts": ["refused"]}
    assert receiver.seen == ["/cb?id=1"] + ["/cb?id=3"] * 3 + ["/cb?id=forged"]
    outcomes = [(e["params"]["id"], e["outcome"]) for e in events(echo_host, "callback")]
    assert ("2", "dropped") in outcomes and ("5", "refused") in outcomes


def test_reorder_holds_a_callback_until_the_next(echo_host, receiver):
    add(echo_host, {"match": {"action": "ping", "params": {"id": "a"}}, "effect": {"callback": "reorder"}})
    t = threading.Thread(target=notify, args=(echo_host, receiver.url, "a"))
    t.start()
    time.sleep(0.3)
    notify(echo_host, receiver.url, "b")
    t.join(10)
    assert receiver.seen == ["/cb?id=b", "/cb?id=a"]


@pytest.mark.parametrize("service,path", [("solver", "/in.php"), ("captcha", "/"), ("chat", "/v4/openim/sendmsg")])
def test_unreadable_body_is_answered_and_the_server_keeps_serving(tmp_path, service, path):
    from harness.host import HostThread
    with HostThread(services={service: {}}, run_dir=str(tmp_path)) as ht:
        host, port = ht.host.urls[service].removeprefix("http://").split(":")
        body = b"this is not gzip"
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
            status = s.recv(200).split(b"\r\n")[0]
        assert status.startswith(b"HTTP/1.1 ") and not status.startswith(b"HTTP/1.1 5"), status
        assert requests.get(ht.host.urls[service] + path, timeout=5).status_code < 500


def test_a_refusal_of_non_utf8_client_bytes_can_be_logged_and_journaled():
    """A header that was not UTF-8 reaches the mock as lone surrogates; the refusal line is logged
    (pytest-xdist sends captured logs between processes as UTF-8: a surrogate broke the worker)."""
    from mocks.base.reply import refusal
    r = refusal("signed host", "127.0.0.1:1", "h\udce9st")
    for value in r.values():
        value.encode("utf-8")
    assert r["got"] == "h\\udce9st" and "h\\udce9st" in r["why"]


def test_a_refused_request_with_non_utf8_header_bytes_logs_a_utf8_line(tmp_path, caplog):
    """The whole refusal line (the action taken from the header included) can be sent as UTF-8."""
    import logging

    from harness.host import HostThread
    from tests.test_control_api import raw_get
    caplog.set_level(logging.INFO, logger="harness.mocks")
    with HostThread(services={"captcha": {}}, run_dir=str(tmp_path)) as ht:
        answer = raw_get(ht.host.urls["captcha"], "/", b"X-TC-Action: Describe\xe9")
        assert answer.startswith(b"HTTP/1.1 200 ")  # the API's error shape, in a 200
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert lines, "the refusal was not logged"
    for line in lines:
        line.encode("utf-8")
