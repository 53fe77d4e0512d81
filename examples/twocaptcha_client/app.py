"""A tiny backend that solves reCAPTCHAs with the official ``2captcha-python`` SDK, unmodified.

The SDK only speaks https (``https://<server>/in.php``), so the harness serves the solver mock over
TLS (``tls: [solver]`` in the target profile) and hands the target its CA through ``REQUESTS_CA_BUNDLE``.

``POST /solve {"sitekey", "pageurl"}`` → submitted with the SDK's ``send`` and polled with its
``get_result``; the token is then used once at ``SITE_URL``. Answers 200 ``{"id", "code"}``, or 502
``{"error"}`` when it gave up. A busy (``ERROR_NO_SLOT_AVAILABLE``) or unreachable solver is asked
again with backoff (no task was created); a task is polled until its deadline through "not ready"
and network errors alike; a captcha the solver could not solve is submitted again, at most twice;
a use the site did not answer is tried again until the deadline (a refused one is not).

Why not ``solver.recaptcha()``: its poller catches the SDK's ``twocaptcha.NetworkException``, but
the SDK's HTTP layer raises ``twocaptcha.api.NetworkException``, another class — so one poll that
cannot reach the solver ends the wait and the task's solution is never fetched.

Env: PORT, SOLVER_SERVER (host:port, what the SDK's ``server=`` takes), SOLVER_KEY, SITE_URL,
POLL_INTERVAL (seconds), SOLVE_TIMEOUT (one task's poll deadline), SUBMIT_BACKOFF (first wait
before asking a busy or unreachable solver again), HTTP_TIMEOUT (each of the SDK's HTTP calls; it
sets none itself), VARIANT (a planted bug, below).

Variants (bugs a real integration of this SDK could have):
- ``sdk_wait``: waits with ``solver.recaptcha()`` (see above): a poll that meets an outage gives
  the task up and submits the captcha again; the first solution is never used.
- ``fast_poll``: the same, asking the SDK to poll every 0.5 s; the SDK truncates the interval with
  ``int()`` to 0 and polls res.php in a tight loop.
- ``error_as_token``: polls res.php itself (the SDK sets no timeout on its requests) and takes
  whatever the answer says after ``|`` as the token, ``ERROR_CAPTCHA_UNSOLVABLE`` included.
- ``no_http_timeout``: trusts the SDK's HTTP calls as they are (no timeout): a poll the solver
  takes and never answers holds the task for ever, and its solution is lost.
- ``reuses_token``: keeps a fresh token per page for the reCAPTCHA token lifetime (120 s) and uses
  it again for the next request to that page; tokens are single-use.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
import twocaptcha
import twocaptcha.api
from twocaptcha import TwoCaptcha

SERVER = os.environ["SOLVER_SERVER"]
KEY = os.environ["SOLVER_KEY"]
SITE_URL = os.environ["SITE_URL"]
POLL = float(os.environ.get("POLL_INTERVAL", "1"))
TIMEOUT = float(os.environ.get("SOLVE_TIMEOUT", "20"))
SUBMIT_BACKOFF = float(os.environ.get("SUBMIT_BACKOFF", "0.3"))
HTTP_TIMEOUT = float(os.environ.get("HTTP_TIMEOUT", "10"))
VARIANT = os.environ.get("VARIANT", "")
RESUBMITS = 2          # a captcha the solver could not solve is submitted again at most twice
TOKEN_LIFETIME = 120   # reuses_token: how long it keeps a token per page
# the SDK's solver and its HTTP layer raise exception classes of the same names that are not related
NETWORK = (twocaptcha.NetworkException, twocaptcha.api.NetworkException)
API = (twocaptcha.ApiException, twocaptcha.api.ApiException)
GIVE_UP = (*NETWORK, *API, twocaptcha.TimeoutException)



class _TimedRequests:
    """``requests`` as the SDK's HTTP layer sees it, with a timeout on every call. The SDK sets none:
    a solver that accepts a poll and never answers would hold that poll, and the user waiting on it,
    forever (``harness explore`` found it: a hung res.php lost the task's solution)."""

    RequestException = requests.RequestException

    @staticmethod
    def get(*args, **kwargs):
        return requests.get(*args, timeout=HTTP_TIMEOUT, **kwargs)

    @staticmethod
    def post(*args, **kwargs):
        return requests.post(*args, timeout=HTTP_TIMEOUT, **kwargs)


if VARIANT != "no_http_timeout":
    twocaptcha.api.requests = _TimedRequests   # the SDK itself is unmodified

_fresh: dict[str, tuple[float, dict]] = {}  # reuses_token: page → (solved at, result)
_fresh_lock = threading.Lock()


class Unsolvable(Exception):
    """The solver could not solve the captcha: a new task may succeed."""


def solve(sitekey: str, pageurl: str) -> tuple[int, dict]:
    solver = TwoCaptcha(KEY, server=SERVER, pollingInterval=0.5 if VARIANT == "fast_poll" else int(POLL),
                        defaultTimeout=TIMEOUT, recaptchaTimeout=TIMEOUT)
    try:
        result = _cached(pageurl) if VARIANT == "reuses_token" else None
        if result is None:
            result = _solve_resubmitting(solver, sitekey, pageurl)
            if VARIANT == "reuses_token":
                with _fresh_lock:
                    _fresh[pageurl] = (time.monotonic(), result)
        used = _use(result)
    except GIVE_UP as e:
        return 502, {"error": f"{type(e).__name__}: {e}"}
    if used.status_code != 200:
        return 502, {"error": f"site refused the token: HTTP {used.status_code}"}
    return 200, {"id": result["captchaId"], "code": result["code"]}


def _cached(pageurl: str) -> dict | None:
    with _fresh_lock:
        at, result = _fresh.get(pageurl, (0.0, None))
    return result if time.monotonic() - at < TOKEN_LIFETIME else None


def _solve_resubmitting(solver: TwoCaptcha, sitekey: str, pageurl: str) -> dict:
    for _ in range(1 + RESUBMITS):
        try:
            return _solve_once(solver, sitekey, pageurl)
        except Unsolvable:
            continue
    raise twocaptcha.ApiException(f"ERROR_CAPTCHA_UNSOLVABLE, {1 + RESUBMITS} times")


def _solve_once(solver: TwoCaptcha, sitekey: str, pageurl: str) -> dict:
    """One task: submitted (again, with backoff, while the solver is busy or unreachable) and awaited,
    within SOLVE_TIMEOUT."""
    deadline, backoff = time.monotonic() + TIMEOUT, SUBMIT_BACKOFF
    while True:
        try:
            if VARIANT in ("sdk_wait", "fast_poll"):
                return solver.recaptcha(sitekey=sitekey, url=pageurl)
            captcha_id = solver.send(method="userrecaptcha", googlekey=sitekey, url=pageurl)
            poll = _poll_own if VARIANT == "error_as_token" else _await
            return {"captchaId": captcha_id, "code": poll(solver, captcha_id, deadline)}
        except API as e:
            if "ERROR_CAPTCHA_UNSOLVABLE" in str(e):
                raise Unsolvable() from e
            if "ERROR_NO_SLOT_AVAILABLE" not in str(e):
                raise
        except NETWORK:
            pass  # in.php unreachable (or, sdk_wait, a poll that was)
        # submit again only while a new task can still be waited for (two polls): one that cannot
        # would be solved and never used — a solution paid for and lost (harness explore found it)
        if time.monotonic() + backoff + 2 * POLL > deadline:
            raise twocaptcha.TimeoutException("the solver stayed busy or unreachable")
        time.sleep(backoff)
        backoff = min(backoff * 2, 2.0)


def _await(solver: TwoCaptcha, captcha_id: str, deadline: float) -> str:
    """The task polled every POLL seconds until its deadline: the SDK's get_result raises a
    NetworkException for "not ready" and (another class) for a solver it could not reach."""
    while time.monotonic() < deadline:
        try:
            return solver.get_result(captcha_id)
        except NETWORK:
            time.sleep(POLL)
    raise twocaptcha.TimeoutException(f"task {captcha_id} not solved within {TIMEOUT:g} s")


def _poll_own(solver: TwoCaptcha, captcha_id: str, deadline: float) -> str:
    """error_as_token: res.php polled with requests, a timeout on every call — and any answer but
    "not ready" taken as the token."""
    while time.monotonic() < deadline:
        answer = requests.get(f"https://{SERVER}/res.php", params={"key": KEY, "action": "get", "id": captcha_id},
                              timeout=5).text
        if answer != "CAPCHA_NOT_READY":
            return answer.split("|", 1)[-1]
        time.sleep(POLL)
    raise twocaptcha.TimeoutException(f"task {captcha_id} not solved within {TIMEOUT:g} s")


def _use(result: dict) -> requests.Response:
    """The token used once at the site; again (within SOLVE_TIMEOUT) only when the site could not be reached."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return requests.post(SITE_URL, data={"token": result["code"], "task": result["captchaId"]}, timeout=5)
        except requests.ConnectionError as e:
            if time.monotonic() + SUBMIT_BACKOFF > deadline:
                raise twocaptcha.NetworkException(f"the site stayed unreachable: {e}") from e
            time.sleep(SUBMIT_BACKOFF)


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
