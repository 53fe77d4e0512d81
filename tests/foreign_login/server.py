"""A captcha login backend written "elsewhere" (stdlib only), shaped unlike examples/captcha_backend:
``PUT /auth/signin`` with a form {captcha_ticket, rand}, 201 when let in, 401 when refused, readiness
on ``GET /up`` (204), the verification URL and credentials from its own env names, and no request
signing (its profile turns the mock's signature check off). It fails open when the verification
service errs, times out or is busy (CaptchaCode 26); ``VARIANT=fail_closed`` is its bug variant.
Used by tests/test_profiles.py."""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERIFY_URL = os.environ["VERIFY_URL"]
APP_ID, APP_KEY = int(os.environ["APP_ID"]), os.environ["APP_KEY"]
SECRET_ID = os.environ["SECRET_ID"]
FAIL_CLOSED = os.environ.get("VARIANT") == "fail_closed"  # the bug variant: blocks users when the service errs


def dr_ticket_ok(ticket: str) -> bool:
    """A disaster-recovery ticket (``terror_<code>_<appid>_<unix s>``): this app's, at most 5 min old."""
    parts = ticket.split("_")
    if len(parts) != 4 or not (parts[2].isdigit() and parts[3].isdigit()):
        return False
    return int(parts[2]) == APP_ID and -60 <= time.time() - int(parts[3]) <= 300


def verify(ticket: str, rand: str) -> bool:
    if ticket.startswith(("terror_", "trerror_")):
        return dr_ticket_ok(ticket)
    body = json.dumps({"CaptchaType": 9, "Ticket": ticket, "Randstr": rand, "UserIp": "127.0.0.1",
                       "CaptchaAppId": APP_ID, "AppSecretKey": APP_KEY}).encode()
    req = urllib.request.Request(VERIFY_URL, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-TC-Action": "DescribeCaptchaResult", "X-TC-Version": "2019-07-22",
        "X-TC-Timestamp": str(int(time.time())),
        "Authorization": f"TC3-HMAC-SHA256 Credential={SECRET_ID}/2026-01-01/captcha/tc3_request, "
                         "SignedHeaders=content-type;host, Signature=" + "0" * 64})
    try:
        with urllib.request.urlopen(req, timeout=1) as resp:
            answer = json.loads(resp.read()).get("Response", {})
    except Exception:  # unreachable, an error page, a cut-off or garbled answer
        return not FAIL_CLOSED  # the service is unavailable: let the user in
    if "Error" in answer:
        return not FAIL_CLOSED and answer["Error"].get("Code", "").startswith(("InternalError", "RequestLimitExceeded"))
    code = answer.get("CaptchaCode")
    return code == 26 or (code == 1 and answer.get("EvilLevel") != 100)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(204 if self.path == "/up" else 404)
        self.end_headers()

    def do_PUT(self):
        if self.path != "/auth/signin":
            self.send_response(404)
            self.end_headers()
            return
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
        ticket, rand = form.get("captcha_ticket", [""])[0], form.get("rand", [""])[0]
        status = 201 if ticket and verify(ticket, rand) else 401
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"welcome\n" if status == 201 else b"no\n")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["LISTEN"])), Handler).serve_forever()
