"""Configuration, from the environment only.

Durations are seconds; every one is multiplied by ``HARNESS_TIME_SCALE`` (set by the harness,
default 1) so a compressed run compresses the client too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

VARIANTS = ("correct", "callback_only", "unbounded_polling", "non_idempotent", "ack_before_store",
            "dlq_never_reprocessed", "check_then_act", "gives_up_not_ready", "error_as_solution")

# the check_then_act bug: the work done between "is it stored?" and "store it" (a lookup, a log line)
CHECK_TO_ACT_S = 0.05

# the unbounded_polling bug: no pingback, res.php in a tight loop from the first moment
TIGHT_LOOP_S = 0.01


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


@dataclass(frozen=True)
class Settings:
    port: int
    solver_url: str            # base URL: in.php and res.php are appended
    solver_key: str
    callback_url: str          # base URL the solver sends pingbacks to: /pingback is appended
    redis_url: str
    site_url: str              # where a solution is used (POST token=…&task=…)
    variant: str
    callback_timeout: float    # wait this long for a pingback before fallback polling (real: 120 s)
    poll_interval: float       # fallback polls of one task at most this often (real: 5 s)
    poll_give_up: float        # a task still unsolved this long after submit is given up (real: 600 s)
    dlq_retry_interval: float  # the dead-letter queue is reprocessed this often (real: 10 s)
    submit_retries: int        # in.php retries on ERROR_NO_SLOT_AVAILABLE / transient errors
    submit_backoff: float      # first retry delay, doubled each time (real: 5 s)
    unsolvable_resubmits: int  # ERROR_CAPTCHA_UNSOLVABLE → submit the job again, at most this often
    http_timeout: float        # solver and site calls
    redis_timeout: float       # Redis socket timeout: a lost database fails fast, into the DLQ
    write_behind_delay: float  # ack_before_store only: results are written this long after the ack
    use_workers: int           # threads that take stored results and use them (each POST waits on the site)
    server_threads: int        # request handler threads (a /solve holds one for the whole in.php call)
    spool_path: str = ""       # a local file for tasks submitted while Redis was away ("": memory only)

    @property
    def pingback_url(self) -> str:
        return self.callback_url.rstrip("/") + "/pingback"

    @property
    def uses_pingbacks(self) -> bool:
        return self.variant != "unbounded_polling"

    @property
    def polls(self) -> bool:
        return self.variant != "callback_only"

    @property
    def dedupe_mode(self) -> str:
        """atomic (one Redis script), none (non_idempotent), or check_then_act (read, work, write)."""
        return {"non_idempotent": "none", "check_then_act": "check_then_act"}.get(self.variant, "atomic")

    @property
    def reprocesses_dlq(self) -> bool:
        return self.variant != "dlq_never_reprocessed"

    @classmethod
    def from_env(cls) -> "Settings":
        scale = _float("HARNESS_TIME_SCALE", 1.0) or 1.0
        variant = os.environ.get("VARIANT", "").strip() or "correct"
        if variant not in VARIANTS:
            raise SystemExit(f"VARIANT={variant!r}: expected one of {', '.join(VARIANTS)}")
        port = int(os.environ.get("PORT", "8090"))
        s = cls(
            port=port,
            solver_url=os.environ.get("SOLVER_URL", "https://ocr.captchaai.com").rstrip("/"),
            solver_key=os.environ.get("SOLVER_KEY", ""),
            callback_url=os.environ.get("CALLBACK_URL", f"http://127.0.0.1:{port}"),
            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            site_url=os.environ.get("SITE_URL", ""),
            variant=variant,
            callback_timeout=_float("CALLBACK_TIMEOUT", 120.0) * scale,
            poll_interval=_float("POLL_INTERVAL", 5.0) * scale,
            poll_give_up=_float("POLL_GIVE_UP", 600.0) * scale,
            dlq_retry_interval=_float("DLQ_RETRY_INTERVAL", 10.0) * scale,
            submit_retries=int(_float("SUBMIT_RETRIES", 5)),
            submit_backoff=_float("SUBMIT_BACKOFF", 5.0) * scale,
            unsolvable_resubmits=int(_float("UNSOLVABLE_RESUBMITS", 2)),
            http_timeout=_float("HTTP_TIMEOUT", 30.0) * scale,
            redis_timeout=_float("REDIS_TIMEOUT", 2.0) * scale,
            write_behind_delay=_float("WRITE_BEHIND_DELAY", 1.0) * scale,
            use_workers=max(1, int(_float("USE_WORKERS", 16))),
            server_threads=max(1, int(_float("SERVER_THREADS", 8))),
            spool_path=os.environ.get("SPOOL_PATH", ""),
        )
        if variant == "unbounded_polling":  # the bug: poll at once, in a tight loop
            s = cls(**{**s.__dict__, "callback_timeout": 0.0, "poll_interval": TIGHT_LOOP_S})
        return s
