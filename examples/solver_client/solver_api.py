"""HTTP calls: CaptchaAI ``in.php`` / ``res.php`` (``json=1``) and the site where a solution is used.

Every call returns an ``Answer(kind, value)`` instead of raising, so callers decide per kind:

- submit: ``ok`` (value = task id), ``retry`` (busy / transient / network), ``fatal``;
- poll:   ``ready`` (value = token), ``not_ready``, ``unsolvable``, ``gone`` (unknown id), ``retry``;
- use:    ``used``, ``rejected`` (the site refused the token for good), ``retry`` (try again later).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import requests

NOT_READY = "CAPCHA_NOT_READY"  # sic
RETRYABLE_SUBMIT = {"ERROR_NO_SLOT_AVAILABLE", "ERROR_ZERO_BALANCE", "ERROR_TOO_MUCH_REQUESTS", "MAX_USER_TURN",
                    "ERROR_SERVER_ERROR", "ERROR_INTERNAL_SERVER_ERROR", "ERROR_PROXY_CONNECTION_FAILED"}
SITEKEY_PARAM = {"userrecaptcha": "googlekey", "turnstile": "sitekey", "hcaptcha": "sitekey"}


@dataclass
class Answer:
    kind: str
    value: str = ""


def _request_field(resp: requests.Response) -> tuple[int | None, str]:
    """(status, request) from a JSON reply; the API sometimes answers plain text even with json=1."""
    try:
        body: Any = resp.json()
    except ValueError:
        text = resp.text.strip()
        if text.startswith("OK|"):
            return 1, text[3:]
        return 0, text
    if not isinstance(body, dict):
        return 0, str(body)
    return body.get("status"), str(body.get("request", ""))


class SolverApi:
    def __init__(self, base_url: str, key: str, site_url: str, timeout: float):
        self.base_url, self.key, self.site_url, self.timeout = base_url, key, site_url, timeout
        self._local = threading.local()

    @property
    def http(self) -> requests.Session:
        """One session (and kept-alive connection) per thread: handler threads, use workers, poller and
        DLQ all call out at once, and a shared session serializes them on its cookie jar's lock and
        keeps only 10 connections per host (urllib3's default pool), closing the rest after each call."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def submit(self, job: dict[str, str], pingback: str | None) -> Answer:
        method = job.get("method") or "userrecaptcha"
        params = {"key": self.key, "method": method, "json": "1", "pageurl": job.get("pageurl", ""),
                  SITEKEY_PARAM.get(method, "sitekey"): job.get("sitekey", "")}
        if pingback:
            params["pingback"] = pingback
        try:
            resp = self.http.post(self.base_url + "/in.php", data=params, timeout=self.timeout)
        except requests.RequestException as e:
            return Answer("retry", f"{type(e).__name__}")
        if resp.status_code >= 500 or resp.status_code == 429:
            return Answer("retry", f"HTTP {resp.status_code}")
        status, request = _request_field(resp)
        if status == 1 and request:
            return Answer("ok", request)
        return Answer("retry" if request in RETRYABLE_SUBMIT else "fatal", request or f"HTTP {resp.status_code}")

    def poll(self, task_id: str) -> Answer:
        params = {"key": self.key, "action": "get", "id": task_id, "json": "1"}
        try:
            resp = self.http.get(self.base_url + "/res.php", params=params, timeout=self.timeout)
        except requests.RequestException as e:
            return Answer("retry", type(e).__name__)
        if resp.status_code != 200:
            return Answer("retry", f"HTTP {resp.status_code}")
        status, request = _request_field(resp)
        if status == 1:
            return Answer("ready", request)
        if request == NOT_READY:
            return Answer("not_ready")
        if request == "ERROR_CAPTCHA_UNSOLVABLE":
            return Answer("unsolvable", request)
        if request in ("ERROR_WRONG_CAPTCHA_ID", "ERROR_WRONG_ID_FORMAT"):
            return Answer("gone", request)
        return Answer("retry", request or f"HTTP {resp.status_code}")

    def use(self, task_id: str, token: str) -> Answer:
        try:
            resp = self.http.post(self.site_url, data={"token": token, "task": task_id}, timeout=self.timeout)
        except requests.RequestException as e:
            return Answer("retry", type(e).__name__)
        if resp.status_code == 200:
            return Answer("used")
        if resp.status_code >= 500 or resp.status_code == 429:
            return Answer("retry", f"HTTP {resp.status_code}")
        try:
            error = str(resp.json().get("error", ""))
        except (ValueError, AttributeError):
            error = resp.text[:100]
        if error == "token already used":  # an earlier attempt got through: that was the use
            return Answer("used", error)
        return Answer("rejected", error or f"HTTP {resp.status_code}")
