"""A tiny backend that solves reCAPTCHAs with the official ``2captcha-python`` SDK, unmodified.

The SDK only speaks https (``https://<server>/in.php``), so the harness serves the solver mock over
TLS (``tls: [solver]`` in the scenario) and hands the target its CA through ``REQUESTS_CA_BUNDLE``.

``POST /solve {"sitekey", "pageurl"}`` → the SDK submits and polls; the token is then used once at
``SITE_URL``. Answers 200 ``{"id", "code"}``, or 502 ``{"error"}`` when the SDK gave up.

Env: PORT, SOLVER_SERVER (host:port, what the SDK's ``server=`` takes), SOLVER_KEY, SITE_URL,
POLL_INTERVAL (whole seconds, the SDK's minimum is 1), SOLVE_TIMEOUT.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from twocaptcha import TwoCaptcha
from twocaptcha.api import ApiException, NetworkException
from twocaptcha.solver import TimeoutException

SERVER = os.environ["SOLVER_SERVER"]
KEY = os.environ["SOLVER_KEY"]
SITE_URL = os.environ["SITE_URL"]
POLL = int(os.environ.get("POLL_INTERVAL", "1"))
TIMEOUT = float(os.environ.get("SOLVE_TIMEOUT", "20"))


def solve(sitekey: str, pageurl: str) -> tuple[int, dict]:
    solver = TwoCaptcha(KEY, server=SERVER, pollingInterval=POLL, defaultTimeout=TIMEOUT, recaptchaTimeout=TIMEOUT)
    try:
        result = solver.recaptcha(sitekey=sitekey, url=pageurl)
    except (ApiException, NetworkException, TimeoutException) as e:
        return 502, {"error": f"{type(e).__name__}: {e}"}
    used = requests.post(SITE_URL, data={"token": result["code"], "task": result["captchaId"]}, timeout=5)
    if used.status_code != 200:
        return 502, {"error": f"site refused the token: HTTP {used.status_code}"}
    return 200, {"id": result["captchaId"], "code": result["code"]}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._reply(200, {"ok": True}) if self.path == "/health" else self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/solve":
            return self._reply(404, {"error": "not found"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        except ValueError:
            return self._reply(400, {"error": "expected JSON"})
        self._reply(*solve(str(body.get("sitekey", "")), str(body.get("pageurl", ""))))

    def _reply(self, status: int, doc: dict) -> None:
        raw = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{self.address_string()} {fmt % args}", flush=True)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
