"""A solver client of another shape than examples/: the standard library only, the 2captcha
plain-text protocol (``OK|id``, no ``json=1``), polling without pingbacks, and it delivers each
solution to a third-party URL of its own as nested JSON (``{"job", "captcha": {"response"}}``),
not to the mock's stand-in site.

``POST /jobs {"sitekey", "pageurl"}`` answers 202 at once; a thread submits (retrying a failed or
unreadable submit twice), polls every ``POLL_S``, gives up after ``GIVE_UP_S`` or on
``ERROR_CAPTCHA_UNSOLVABLE``, and POSTs the solution to ``DELIVER_URL``.

Env: PORT, SOLVER_URL, SOLVER_KEY, DELIVER_URL, POLL_S (0.5), GIVE_UP_S (20), SUBMIT_TIMEOUT_S (3),
VARIANT: "" (correct) or ``poll_forever`` (takes ERROR_CAPTCHA_UNSOLVABLE for "not ready yet" and
never gives up).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOLVER = os.environ["SOLVER_URL"].rstrip("/")
KEY = os.environ["SOLVER_KEY"]
DELIVER = os.environ["DELIVER_URL"]
POLL_S = float(os.environ.get("POLL_S", "0.5"))
GIVE_UP_S = float(os.environ.get("GIVE_UP_S", "20"))
SUBMIT_TIMEOUT_S = float(os.environ.get("SUBMIT_TIMEOUT_S", "3"))
VARIANT = os.environ.get("VARIANT", "")


def call(url: str, data: bytes | None = None, timeout: float = 5.0, headers: dict | None = None) -> str:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


def submit(sitekey: str, pageurl: str) -> str | None:
    form = urllib.parse.urlencode({"key": KEY, "method": "userrecaptcha", "googlekey": sitekey,
                                   "pageurl": pageurl}).encode()
    for _ in range(3):
        try:
            answer = call(f"{SOLVER}/in.php", form, timeout=SUBMIT_TIMEOUT_S)
        except Exception as e:  # a timeout, a cut answer: submit again
            print(f"submit failed: {e!r}", flush=True)
            continue
        if answer.startswith("OK|"):
            return answer[3:]
        print(f"submit refused: {answer}", flush=True)
        time.sleep(0.3)
    return None


def solve(n: int, sitekey: str, pageurl: str) -> None:
    task = submit(sitekey, pageurl)
    if task is None:
        return
    started = time.monotonic()
    while VARIANT == "poll_forever" or time.monotonic() - started < GIVE_UP_S:
        time.sleep(POLL_S)
        try:
            answer = call(f"{SOLVER}/res.php?" + urllib.parse.urlencode({"key": KEY, "action": "get", "id": task}))
        except Exception as e:
            print(f"poll failed: {e!r}", flush=True)
            continue
        if answer.startswith("OK|"):
            body = json.dumps({"job": n, "captcha": {"response": answer[3:]}}).encode()
            print("delivered:", call(DELIVER, body, headers={"Content-Type": "application/json"}), flush=True)
            return
        if answer == "CAPCHA_NOT_READY" or VARIANT == "poll_forever":
            continue
        print(f"task {task}: {answer}", flush=True)  # ERROR_CAPTCHA_UNSOLVABLE and the like: done
        return


class Handler(BaseHTTPRequestHandler):
    jobs = 0

    def do_GET(self) -> None:
        self._reply(200 if self.path == "/health" else 404, {})

    def do_POST(self) -> None:
        if self.path != "/jobs":
            return self._reply(404, {})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        Handler.jobs += 1
        threading.Thread(target=solve, args=(Handler.jobs, str(body.get("sitekey", "")),
                                             str(body.get("pageurl", ""))), daemon=True).start()
        self._reply(202, {"job": Handler.jobs})

    def _reply(self, status: int, doc: dict) -> None:
        raw = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, fmt: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
