"""A tiny login backend with Tencent Captcha verification and disaster recovery (reference integration).

Serves ``index.html`` (the captcha script URL and CaptchaAppId filled in) and ``POST /login``, which
verifies the ticket with the official SDK (``CaptchaClient.DescribeCaptchaResult``) and decides:

- CaptchaCode 1 → allow (block if EvilLevel is 100);
- no answer (timeout, reset: ``ClientNetworkError``), a non-200 answer (``ServerNetworkError``),
  ``InternalError`` or CaptchaCode 26 → allow without verification ("skip", the DR doc's rule);
- CaptchaCode 21 for a ``terror_``/``trerror_`` ticket → allow (a disaster-recovery ticket; a real
  business may add a secondary check here);
- anything else → block (403).

Run by hand against the mock::

    .venv/bin/python examples/captcha_frontend/server.py --captcha http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from mocks.captcha.config import DEFAULT_APP_ID, DEFAULT_APP_SECRET_KEY, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index.html")
DR_PREFIXES = ("terror_", "trerror_")
FAIL_OPEN_ERRORS = ("ClientNetworkError", "ServerNetworkError", "InternalError")


def decide(result: dict[str, Any] | None, error: str | None, ticket: str) -> str:
    """allow | allow_skip (verification unavailable) | allow_dr (DR ticket) | block."""
    if error is not None:
        return "allow_skip" if error in FAIL_OPEN_ERRORS else "block"
    code = (result or {}).get("CaptchaCode")
    if code == 1:
        return "block" if (result or {}).get("EvilLevel") == 100 else "allow"
    if code == 26:
        return "allow_skip"
    if code == 21 and ticket.startswith(DR_PREFIXES):
        return "allow_dr"
    return "block"


class LoginBackend:
    def __init__(self, *, captcha_url: str, script_url: str | None = None, app_id: int = DEFAULT_APP_ID,
                 app_secret_key: str = DEFAULT_APP_SECRET_KEY, secret_id: str = DEFAULT_SECRET_ID,
                 secret_key: str = DEFAULT_SECRET_KEY, timeout_s: int = 5, host: str = "127.0.0.1", port: int = 0):
        from tencentcloud.captcha.v20190722 import captcha_client
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile

        scheme, _, endpoint = captcha_url.partition("://")
        profile = ClientProfile(httpProfile=HttpProfile(protocol=scheme, endpoint=endpoint.rstrip("/"),
                                                        reqTimeout=timeout_s))
        self.client = captcha_client.CaptchaClient(credential.Credential(secret_id, secret_key), "", profile)
        self.script_url = script_url or captcha_url.rstrip("/") + "/TCaptcha.js"
        self.app_id, self.app_secret_key = app_id, app_secret_key
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="login-backend", daemon=True)

    def start(self) -> "LoginBackend":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "LoginBackend":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def page(self) -> bytes:
        with open(PAGE, encoding="utf-8") as f:
            html = f.read()
        return html.replace("{{SCRIPT_URL}}", self.script_url).replace("{{APP_ID}}", str(self.app_id)).encode()

    def verify(self, ticket: str, randstr: str, user_ip: str) -> tuple[dict[str, Any] | None, str | None]:
        from tencentcloud.captcha.v20190722 import models
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        req = models.DescribeCaptchaResultRequest()
        req.CaptchaType, req.Ticket, req.UserIp, req.Randstr = 9, ticket, user_ip, randstr
        req.CaptchaAppId, req.AppSecretKey = self.app_id, self.app_secret_key
        try:
            return json.loads(self.client.DescribeCaptchaResult(req).to_json_string()), None
        except TencentCloudSDKException as e:
            return None, e.get_code()

    def login(self, body: dict[str, Any], user_ip: str) -> tuple[int, dict[str, Any]]:
        ticket, randstr = str(body.get("ticket") or ""), str(body.get("randstr") or "")
        result, error = self.verify(ticket, randstr, user_ip)
        decision = decide(result, error, ticket)
        entry = {"username": body.get("username"), "ticket": ticket, "randstr": randstr,
                 "errorCode": body.get("errorCode"), "result": result, "error": error, "decision": decision}
        with self._lock:
            self.received.append(entry)
        ok = decision != "block"
        return (200 if ok else 403), {"ok": ok, "decision": decision,
                                      "captcha_code": (result or {}).get("CaptchaCode"), "error": error}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.split("?")[0] in ("/", "/index.html"):
                    self._send(200, backend.page(), "text/html; charset=utf-8")
                else:
                    self._send(404, b"not found", "text/plain")

            def do_POST(self) -> None:
                if self.path != "/login":
                    return self._send(404, b"not found", "text/plain")
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                    if not isinstance(body, dict):
                        raise ValueError("not an object")
                except ValueError:
                    return self._send(400, b'{"ok": false, "reason": "bad json"}', "application/json")
                status, answer = backend.login(body, self.client_address[0])
                self._send(status, json.dumps(answer).encode(), "application/json")

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--captcha", required=True, help="captcha API base URL, e.g. http://127.0.0.1:41001")
    p.add_argument("--script", help="TCaptcha.js URL (default: <captcha>/TCaptcha.js)")
    p.add_argument("--port", type=int, default=8080)
    args = p.parse_args()
    backend = LoginBackend(captcha_url=args.captcha, script_url=args.script, port=args.port)
    print(f"login page: {backend.url}/", flush=True)
    try:
        backend.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        backend.server.server_close()


if __name__ == "__main__":
    main()
