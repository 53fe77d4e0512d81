"""Our calls to the Tencent Chat REST API: a UserSig from tls-sig-api-v2, and an outbox that sends
queued messages through a per-command pacer, retries transient failures with exponential back-off
and slows down when Chat says we are too fast (``Alert.RequestOverLimit``, 60007/60011/60018/60019).

The ``no_backoff`` variant keeps its rate: it ignores the alarm and retries rate-limited calls after
a fixed short pause.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from TLSSigAPIv2 import TLSSigAPIv2

log = logging.getLogger("chat_backend.rest")

RATE_LIMITED = {60007, 60011, 60018, 60019}   # REST rate over limit / too frequent
TRANSIENT = {60008, 90994, 20005}              # service timeout / internal error: retry later
SIG_EXPIRED = {70001, 70052}                   # make a new UserSig, retry
USERSIG_EXPIRE_S = 180 * 86400


class Pacer:
    """Spaces the calls of one REST command: at most ``qps`` per second. Two ways to go slower:
    a *ceiling* (after ``Alert.RequestOverLimit``: a share of the alarm's Limit, held for a while)
    and a *soft* rate (halved on each rate-limit error, back up by half on each success)."""

    def __init__(self, qps: float):
        self.base = qps
        self.ceiling: float | None = None
        self.ceiling_until = 0.0
        self.soft = qps
        self._next = 0.0
        self._lock = threading.Lock()

    def current(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        qps = min(self.base, self.soft)
        if self.ceiling is not None:
            if now < self.ceiling_until:
                qps = min(qps, self.ceiling)
            else:
                self.ceiling = None
        return qps

    def _respace(self, now: float) -> None:
        # the slot already handed out was at the old pace: re-space from now
        self._next = max(self._next, now + 1.0 / self.current(now))

    def cap(self, qps: float, hold_s: float) -> None:
        with self._lock:
            now = time.monotonic()
            active = self.ceiling if (self.ceiling is not None and now < self.ceiling_until) else qps
            self.ceiling = max(0.2, min(qps, active))
            self.ceiling_until = now + hold_s
            self._respace(now)

    def slow_down(self, factor: float) -> None:
        with self._lock:
            now = time.monotonic()
            self.soft = max(0.5, self.current(now) * factor)
            self._respace(now)

    def succeeded(self) -> None:
        with self._lock:
            if self.soft < self.base:
                self.soft = min(self.base, self.soft * 1.5)

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            qps = self.current(now)
            slot = max(now, self._next)
            self._next = slot + (1.0 / qps if qps > 0 else 0.0)
        if slot > now:
            time.sleep(slot - now)

    def public(self) -> dict[str, Any]:
        now = time.monotonic()
        return {"base_qps": self.base, "qps": round(self.current(now), 3), "soft_qps": round(self.soft, 3),
                "ceiling_qps": self.ceiling,
                "ceiling_for_s": round(max(0.0, self.ceiling_until - now), 3) if self.ceiling else 0}


class ChatRest:
    """One admin's REST client: ``call("openim/sendmsg", body) -> answer dict`` (raises on network errors)."""

    def __init__(self, base_url: str, sdkappid: int, key: str, admin: str, timeout_s: float):
        self.base_url = base_url.rstrip("/")
        self.sdkappid, self.admin, self.timeout_s = sdkappid, admin, timeout_s
        self._signer = TLSSigAPIv2(sdkappid, key)
        self._sig: str | None = None
        self._local = threading.local()

    def usersig(self, fresh: bool = False) -> str:
        if fresh or self._sig is None:
            self._sig = self._signer.gen_sig(self.admin, USERSIG_EXPIRE_S)
        return self._sig

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def call(self, command: str, body: dict[str, Any], fresh_sig: bool = False) -> dict[str, Any]:
        params = {"sdkappid": self.sdkappid, "identifier": self.admin, "usersig": self.usersig(fresh_sig),
                  "random": random.randint(0, 4294967295), "contenttype": "json"}
        resp = self._session().post(f"{self.base_url}/v4/{command}", params=params, json=body,
                                    timeout=self.timeout_s)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code != 200 or not isinstance(data, dict):
            raise requests.HTTPError(f"HTTP {resp.status_code}, not a Chat answer")
        return data


@dataclass
class Job:
    id: int
    command: str
    body: dict[str, Any]
    attempts: int = 0
    created: float = field(default_factory=time.time)
    last_error: str | None = None


@dataclass
class Settings:
    send_qps: float = 100.0          # our own pace per command (documented limit for sendmsg: 200/s)
    backoff_share: float = 0.5       # after the alarm: this share of the alarm's Limit
    backoff_hold_s: float = 60.0     # ... for this long
    retry_base_s: float = 1.0        # first retry delay; doubles each attempt
    retry_max_s: float = 30.0
    max_attempts: int = 8
    threads: int = 4
    backoff: bool = True             # False = the no_backoff bug


class Outbox:
    def __init__(self, rest: ChatRest, settings: Settings):
        self.rest, self.s = rest, settings
        self.q: queue.Queue[Job] = queue.Queue()
        self.pacers: dict[str, Pacer] = {}
        self.dead: list[dict[str, Any]] = []
        self.counts = {"queued": 0, "sent": 0, "attempts": 0, "retried": 0, "dead": 0, "alarms": 0,
                       "rate_limited": 0}
        self._ids = iter(range(1, 1 << 62))
        self._lock = threading.Lock()
        self._timers: set[threading.Timer] = set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._worker, name=f"outbox-{i}", daemon=True)
                         for i in range(max(1, settings.threads))]
        for t in self._threads:
            t.start()

    def pacer(self, command: str) -> Pacer:
        with self._lock:
            p = self.pacers.get(command)
            if p is None:
                p = self.pacers[command] = Pacer(self.s.send_qps)
            return p

    def submit(self, command: str, body: dict[str, Any]) -> int:
        with self._lock:
            job = Job(next(self._ids), command, body)
            self.counts["queued"] += 1
        self.q.put(job)
        return job.id

    # --- back-off ------------------------------------------------------------------------------
    def on_overlimit_alarm(self, service: str, command: str, limit: Any, observed: Any) -> bool:
        """Alert.RequestOverLimit: pace that command at a share of its Limit for a while."""
        with self._lock:
            self.counts["alarms"] += 1
        if not self.s.backoff:
            log.warning("Alert.RequestOverLimit %s/%s (%s of %s/s): ignored", service, command, observed, limit)
            return False
        try:
            limit_qps = float(limit)
        except (TypeError, ValueError):
            limit_qps = self.pacer(f"{service}/{command}").current()
        target = max(0.2, limit_qps * self.s.backoff_share)
        self.pacer(f"{service}/{command}").cap(target, self.s.backoff_hold_s)
        log.warning("Alert.RequestOverLimit %s/%s (%s of %s/s): pacing at %.2f/s for %gs", service, command,
                    observed, limit, target, self.s.backoff_hold_s)
        return True

    def _rate_limited(self, job: Job, code: int) -> None:
        with self._lock:
            self.counts["rate_limited"] += 1
            pacers = list(self.pacers.values()) if code == 60011 else [self.pacers[job.command]]
        if self.s.backoff:
            for p in pacers:
                p.slow_down(self.s.backoff_share)

    # --- sending -------------------------------------------------------------------------------
    def _worker(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.q.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._send(job)
            except Exception:  # noqa: BLE001 - a worker must survive anything
                log.exception("outbox job %s", job.id)

    def _send(self, job: Job, fresh_sig: bool = False) -> None:
        self.pacer(job.command).wait()
        job.attempts += 1
        with self._lock:
            self.counts["attempts"] += 1
        try:
            answer = self.rest.call(job.command, job.body, fresh_sig)
        except requests.RequestException as e:
            return self._retry(job, f"{type(e).__name__}: {e}"[:200])
        code = answer.get("ErrorCode")
        if answer.get("ActionStatus") == "OK" and code == 0:
            with self._lock:
                self.counts["sent"] += 1
            self.pacer(job.command).succeeded()
            return None
        if code in RATE_LIMITED:
            self._rate_limited(job, code)
            return self._retry(job, f"ErrorCode {code}", rate_limited=True)
        if code in TRANSIENT:
            return self._retry(job, f"ErrorCode {code}")
        if code in SIG_EXPIRED and not fresh_sig:
            return self._send(job, fresh_sig=True)
        return self._give_up(job, f"ErrorCode {code}: {answer.get('ErrorInfo')}")

    def _retry(self, job: Job, error: str, rate_limited: bool = False) -> None:
        job.last_error = error
        if job.attempts >= self.s.max_attempts:
            return self._give_up(job, error)
        if self.s.backoff or not rate_limited:
            delay = min(self.s.retry_max_s, self.s.retry_base_s * 2 ** (job.attempts - 1))
            delay *= 1 + random.random() * 0.2
        else:
            delay = self.s.retry_base_s  # the bug: a fixed pause, whatever Chat says
        with self._lock:
            self.counts["retried"] += 1
        timer = threading.Timer(delay, self._requeue, (job,))
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()
        return None

    def _requeue(self, job: Job) -> None:
        with self._lock:
            self._timers = {t for t in self._timers if t.is_alive()}
        if not self._stop.is_set():
            self.q.put(job)

    def _give_up(self, job: Job, error: str) -> None:
        log.error("outbox job %s dead after %d attempts: %s", job.id, job.attempts, error)
        with self._lock:
            self.counts["dead"] += 1
            self.dead.append({"id": job.id, "command": job.command, "attempts": job.attempts, "error": error})
            del self.dead[:-100]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            pacers = {k: p.public() for k, p in self.pacers.items()}
            return {**self.counts, "backlog": self.q.qsize(), "pacers": pacers, "dead_letters": list(self.dead)}

    def close(self) -> None:
        self._stop.set()
        for t in list(self._timers):
            t.cancel()
