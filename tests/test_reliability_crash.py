"""Crash safety: SIGKILL ``harness serve`` in the middle of a load of captcha verifications, solver
tasks and pingbacks. Afterwards every journal line parses, ``seq`` has no gap, and every answer a
client received on the wire (by captcha RequestId, issued ticket, solver task id) has its event in
the journal; every pingback the receiver got belongs to a journaled task.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import requests

from mocks.captcha.config import DEFAULT_APP_SECRET_KEY, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
from mocks.captcha.signature import sign_headers
from mocks.solver.config import DEFAULT_KEY


class Receiver:
    """The integration's pingback listener: remembers (time, id, code) of every pingback, answers OK."""

    def __init__(self) -> None:
        self.got: list[tuple[float, str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                q = dict(parse_qsl(urlsplit(self.path).query))
                outer.got.append((time.monotonic(), q.get("id", ""), q.get("code", "")))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pingback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_serve(tmp_path, *extra: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", "harness", "serve", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(f"harness serve exited with {proc.wait()}")
    return proc, json.loads(line)


class Load:
    """Client threads that never pause: each records what it got back on the wire."""

    def __init__(self, urls: dict, pingback: str):
        self.urls, self.pingback = urls, pingback
        self.stop = threading.Event()
        self.request_ids: list[str] = []
        self.tickets: list[str] = []
        self.task_ids: list[str] = []
        self.polls: list[str] = []
        self.cut_off = 0  # requests that died with the server
        self.threads = [threading.Thread(target=self._captcha, daemon=True) for _ in range(3)]
        self.threads += [threading.Thread(target=self._solver, daemon=True) for _ in range(3)]

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)

    def _run(self, step) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                step(session)
            except (requests.ConnectionError, requests.Timeout):
                self.cut_off += 1
                if self.stop.wait(0.05):
                    return

    def _captcha(self) -> None:
        host = self.urls["captcha"].removeprefix("http://")

        def step(s: requests.Session) -> None:
            t = s.post(self.urls["control"] + "/captcha/tickets", json={}, timeout=10).json()
            self.tickets.append(t["ticket"])
            body = json.dumps({"CaptchaType": 9, "Ticket": t["ticket"], "UserIp": "198.51.100.7",
                               "Randstr": t["randstr"], "CaptchaAppId": t["appid"],
                               "AppSecretKey": DEFAULT_APP_SECRET_KEY}).encode()
            headers = sign_headers(secret_id=DEFAULT_SECRET_ID, secret_key=DEFAULT_SECRET_KEY, host=host,
                                   action="DescribeCaptchaResult", payload=body)
            answer = s.post(self.urls["captcha"] + "/", data=body, headers=headers, timeout=10).json()["Response"]
            assert answer.get("CaptchaCode") == 1, answer
            self.request_ids.append(answer["RequestId"])
        self._run(step)

    def _solver(self) -> None:
        def step(s: requests.Session) -> None:
            r = s.get(self.urls["solver"] + "/in.php", timeout=10, params={
                "key": DEFAULT_KEY, "method": "userrecaptcha", "googlekey": "6Le-sitekey", "json": 1,
                "pageurl": "https://example.test/login", "pingback": self.pingback})
            answer = r.json()
            assert answer["status"] == 1, answer
            self.task_ids.append(str(answer["request"]))
            poll = s.get(self.urls["solver"] + "/res.php", timeout=10,
                         params={"key": DEFAULT_KEY, "action": "get", "id": answer["request"], "json": 1})
            self.polls.append(poll.text)
        self._run(step)


def test_sigkill_mid_load_leaves_a_complete_parsable_journal(tmp_path):
    journal = tmp_path / "journal.jsonl"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"captcha": {}, "solver": {
        "solve_distribution": "uniform", "solve_min_s": 0.05, "solve_max_s": 0.4,
        "keys": {DEFAULT_KEY: {"threads": 100000, "balance": 1e12}}}}))
    with Receiver() as receiver:
        proc, urls = start_serve(tmp_path, "--journal", str(journal), "--config", str(config), "--seed", "4")
        try:
            with Load(urls, receiver.url) as load:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and (
                        len(load.request_ids) < 100 or len(load.task_ids) < 100 or len(receiver.got) < 40):
                    time.sleep(0.05)
                os.kill(proc.pid, signal.SIGKILL)  # mid-flight: the clients are still sending
                killed_at = time.monotonic()
                proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        time.sleep(0.2)  # pingback threads of the receiver finish recording

    assert proc.returncode == -signal.SIGKILL
    raw = journal.read_bytes()
    # only the event being written at the kill may be torn (its write never returned: not acknowledged)
    events = [json.loads(line) for line in raw.split(b"\n")[:-1]]  # every complete line parses
    tail = raw[raw.rfind(b"\n") + 1:]
    assert tail == b"" or tail.startswith(b'{"seq":%d,' % (len(events) + 1)), tail[:200]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert not [e for e in events if e.get("step") == "host_stopped"]  # it really died

    responses = [e for e in events if e["kind"] == "response"]
    seen_request_ids = {e["body"]["Response"]["RequestId"] for e in responses
                        if e["service"] == "captcha" and isinstance(e.get("body"), dict)}
    issued = {e["ticket"] for e in events if e["kind"] == "captcha.ticket"}
    submitted = {str(e["body"]["request"]) for e in responses
                 if e["service"] == "solver" and e["action"] == "in.php" and isinstance(e.get("body"), dict)}
    delivered = {e["params"]["id"] for e in events if e["kind"] == "callback" and e["outcome"] == "delivered"}
    sent = {e["params"]["id"] for e in events if e["kind"] == "callback_send"}
    received = {pid for _, pid, _ in receiver.got}
    early = {pid for t, pid, _ in receiver.got if t < killed_at - 1.5}

    print(f"\nkilled after {len(events)} events: {len(load.request_ids)} verifications, {len(load.tickets)} tickets, "
          f"{len(load.task_ids)} solver tasks, {len(load.polls)} polls, {len(receiver.got)} pingbacks received "
          f"({len(received - delivered)} not yet journaled as delivered), {load.cut_off} requests cut off")
    assert load.cut_off >= 1                                    # the kill hit requests in flight
    assert set(load.request_ids) <= seen_request_ids             # every answer seen on the wire is journaled
    assert set(load.tickets) <= issued
    assert set(load.task_ids) <= submitted
    assert received <= submitted                                  # pingbacks only for journaled tasks
    assert delivered <= received                                  # no phantom deliveries
    assert early <= delivered, early - delivered                  # delivered > 1.5 s before the kill: journaled
    assert received <= sent, received - sent                      # every pingback on the wire was journaled first
