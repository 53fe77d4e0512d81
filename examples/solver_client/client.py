"""The solver client's logic: submit with a pingback, accept pingbacks for known task ids only, store
each result once (Redis), fall back to polling tasks whose pingback never came, park what cannot be
stored or used in the dead-letter queue and reprocess it, and use every solution exactly once.

The bug variants (``VARIANT``) change one decision each; see ``settings.Settings`` and ``app.py``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import store as db
from dlq import DeadLetterQueue
from settings import CHECK_TO_ACT_S, Settings
from solver_api import SolverApi

log = logging.getLogger("solver_client")
IDLE_WAIT_S = 0.2
POLLERS = 16   # fallback polls in flight at once (one per task)


class SubmitError(Exception):
    pass


@dataclass
class Pending:
    task: str
    info: dict[str, Any]               # {job, submitted_at, resubmits} — as stored in sc:pending
    next_poll: float = 0.0
    polls: int = field(default=0)

    @property
    def submitted_at(self) -> float:
        return float(self.info.get("submitted_at", 0.0))


class SolverClient:
    def __init__(self, settings: Settings):
        self.s = settings
        self.api = SolverApi(settings.solver_url, settings.solver_key, settings.site_url, settings.http_timeout)
        self.store = db.Store(settings.redis_url, settings.redis_timeout)
        self.dlq = DeadLetterQueue()
        self.lock = threading.Lock()
        self.pending: dict[str, Pending] = {}    # working copy; sc:pending in Redis is the durable one
        self.unsaved: set[str] = set()           # pending tasks not yet written to Redis
        self.handled: set[str] = set()           # task ids this process stored, failed or gave up
        self.recovered = False
        self.recover_lock = threading.Lock()
        self.write_behind: list[tuple[float, str, str]] = []   # (due, task, token)
        self.counters: dict[str, int] = {}
        self.spool_lock = threading.Lock()       # serializes rewrites of the spool file
        self.polling: set[str] = set()           # tasks whose poll is in flight
        self.pollers = ThreadPoolExecutor(max_workers=POLLERS, thread_name_prefix="poll")
        self.in_hand: set[str] = set()           # task ids a user took from sc:using and has not finished
        self.unfinished: dict[str, bool] = {}    # task id → used: its finish_use failed; finish it again
        self.stranded: dict[str, float] = {}     # task id in sc:using that no user holds → first seen

    def count(self, what: str) -> None:
        with self.lock:
            self.counters[what] = self.counters.get(what, 0) + 1

    # --- submit ----------------------------------------------------------------------------------
    def submit(self, job: dict[str, str], resubmits: int = 0) -> str:
        delay = self.s.submit_backoff
        pingback = self.s.pingback_url if self.s.uses_pingbacks else None
        for attempt in range(self.s.submit_retries + 1):
            ans = self.api.submit(job, pingback)
            if ans.kind == "ok":
                self._track(ans.value, job, resubmits)
                return ans.value
            log.warning("in.php: %s (attempt %d)", ans.value, attempt + 1)
            if ans.kind == "fatal" or attempt == self.s.submit_retries:
                raise SubmitError(ans.value)
            time.sleep(delay)
            delay = min(delay * 2, self.s.submit_backoff * 16)
        raise SubmitError("unreachable")

    def _track(self, task: str, job: dict[str, str], resubmits: int) -> None:
        info = {"job": job, "submitted_at": time.time(), "resubmits": resubmits}
        with self.lock:
            self.pending[task] = Pending(task, info)
            self.unsaved.add(task)
        self._spool()   # first the local spool (a millisecond), then Redis: a crash in between loses nothing
        try:
            self.store.add_pending(task, info)
        except db.Error:
            return
        with self.lock:
            self.unsaved.discard(task)
        self._spool()

    def _spool(self) -> None:
        """The tasks Redis has not got yet, in a local file (SPOOL_PATH), rewritten whole on each
        change: a task submitted while the database was away (or slow) survives a crash before it
        is back (``harness explore`` found it lost: the database cut, or slow, then the process
        killed)."""
        if not self.s.spool_path:
            return
        with self.spool_lock:  # one writer at a time: an older snapshot never replaces a newer one
            with self.lock:
                doc = {t: self.pending[t].info for t in self.unsaved if t in self.pending}
            tmp = f"{self.s.spool_path}.tmp"
            with open(tmp, "w") as f:
                json.dump(doc, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.s.spool_path)

    def _unspooled(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.s.spool_path) as f:
                return dict(json.load(f))
        except (OSError, ValueError, TypeError):
            return {}

    # --- pingbacks -------------------------------------------------------------------------------
    def is_known(self, task: str) -> bool:
        with self.lock:
            if task in self.pending or task in self.handled:
                return True
        return self.store.is_known(task)

    def on_pingback(self, task: str, code: str) -> tuple[int, str]:
        if not task.isdigit() or not code:
            return 400, "bad pingback"
        try:
            known = self.is_known(task)
        except db.Error:
            return 503, "cannot check the task id now"
        if not known:  # only task ids we issued (pingbacks are unauthenticated)
            self.count("pingback_unknown")
            log.warning("pingback for unknown task %s refused", task)
            return 404, "unknown task"
        self.count("pingback")
        if code.startswith("ERROR_") and self.s.variant != "error_as_solution":
            self.task_failed(task, code)
        elif self.s.variant == "ack_before_store":
            self._ack_then_write_behind(task, code)
        else:
            self.accept(task, code, via="pingback")
        return 200, "OK"

    # --- results -----------------------------------------------------------------------------------
    def accept(self, task: str, token: str, via: str) -> str:
        """Store a result once and queue it for use; park it in the DLQ if the database is down."""
        try:
            new = self.store.store_result(task, token, dedupe=self.s.dedupe_mode, work_s=CHECK_TO_ACT_S)
        except db.Error as e:
            if self.dlq.park(task, token, "store", type(e).__name__):
                log.warning("task %s: store failed (%s), parked in the DLQ", task, type(e).__name__)
            return "parked"
        with self.lock:
            self.pending.pop(task, None)
            spooled = task in self.unsaved
            self.unsaved.discard(task)
            self.handled.add(task)
        if spooled:
            self._spool()
        if new:
            self.count(f"stored_via_{via}")
            return "stored"
        self.count("duplicate")
        return "duplicate"

    def _ack_then_write_behind(self, task: str, token: str) -> None:
        """The ack_before_store bug: the task is marked received and the pingback acknowledged; the
        result is written later, from memory. A crash (or a failed write) in between loses it."""
        with self.lock:
            self.pending.pop(task, None)
            self.handled.add(task)
            self.write_behind.append((time.monotonic() + self.s.write_behind_delay, task, token))
        try:
            self.store.drop_pending(task)
        except db.Error:
            pass

    def flush_write_behind(self) -> None:
        now = time.monotonic()
        with self.lock:
            batch = [(t, tok) for due, t, tok in self.write_behind if due <= now]
            self.write_behind = [w for w in self.write_behind if w[0] > now]
        for task, token in batch:
            try:
                self.store.store_result(task, token, dedupe=True)
            except db.Error as e:
                log.error("task %s: write-behind failed (%s); result dropped", task, type(e).__name__)

    def task_failed(self, task: str, code: str) -> None:
        """ERROR_CAPTCHA_UNSOLVABLE (by pingback or poll): never use it; submit the job again."""
        with self.lock:
            p = self.pending.pop(task, None)
            self.handled.add(task)
        if p is None:
            return  # the other path (pingback / poll) handled it already
        self.count("unsolvable")
        try:
            self.store.mark_failed(task, code)
        except db.Error:
            pass
        resubmits = int(p.info.get("resubmits", 0))
        if code == "ERROR_CAPTCHA_UNSOLVABLE" and resubmits < self.s.unsolvable_resubmits:
            threading.Thread(target=self._resubmit, args=(p.info["job"], resubmits + 1), daemon=True).start()

    def _resubmit(self, job: dict[str, str], resubmits: int) -> None:
        try:
            task = self.submit(job, resubmits)
            log.info("resubmitted as %s", task)
        except SubmitError as e:
            log.error("resubmit failed: %s", e)

    def give_up(self, task: str, reason: str) -> None:
        with self.lock:
            self.pending.pop(task, None)
            self.handled.add(task)
        self.count("given_up")
        log.error("task %s given up: %s", task, reason)
        try:
            self.store.mark_failed(task, reason)
        except db.Error:
            pass

    # --- fallback polling --------------------------------------------------------------------------
    def poll_due(self) -> None:
        self._save_unsaved()
        now = time.time()
        with self.lock:
            due = [p for p in self.pending.values()
                   if now - p.submitted_at >= self.s.callback_timeout and now >= p.next_poll]
        # each due task polled on a thread of its own, in the background: a poll the solver holds (up
        # to HTTP_TIMEOUT) delays that task only, not every task behind it (harness explore found four
        # hung polls, one after another, holding a task whose pingback was lost past its deadline)
        for p in due:
            with self.lock:
                if p.task in self.polling:
                    continue
                self.polling.add(p.task)
            self.pollers.submit(self._poll_one, p, now)

    def _poll_one(self, p: Pending, now: float) -> None:
        try:
            self._poll(p, now)
        except Exception:  # a thread of the pool: log it, the task is polled again when due
            log.exception("polling %s", p.task)
        finally:
            with self.lock:
                self.polling.discard(p.task)

    def _poll(self, p: Pending, now: float) -> None:
        with self.lock:
            settled = p.task not in self.pending  # a pingback came while it waited
        if settled or p.task in self.dlq:
            return
        if now - p.submitted_at > self.s.poll_give_up:
            self.give_up(p.task, "no result before the poll deadline")
            return
        p.next_poll = now + self.s.poll_interval
        p.polls += 1
        ans = self.api.poll(p.task)
        if ans.kind == "ready":
            self.accept(p.task, ans.value, via="poll")
        elif ans.kind == "unsolvable":
            self.task_failed(p.task, ans.value)
        elif ans.kind == "not_ready" and self.s.variant == "gives_up_not_ready":
            self.give_up(p.task, "not ready")  # the bug: "not ready" read as a failure
        elif ans.kind == "gone":
            self.give_up(p.task, ans.value)
        elif ans.kind == "retry":
            log.warning("res.php for %s: %s", p.task, ans.value)

    def _save_unsaved(self) -> None:
        with self.lock:
            todo = [(t, self.pending[t].info) for t in self.unsaved if t in self.pending]
        saved = 0
        for task, info in todo:
            try:
                self.store.add_pending(task, info)
            except db.Error:
                break
            with self.lock:
                self.unsaved.discard(task)
            saved += 1
        if saved:  # not on every poller tick while Redis is still away
            self._spool()

    # --- using solutions ---------------------------------------------------------------------------
    def recover(self) -> None:
        """After a (re)start: what was being used is queued again; pending tasks are loaded."""
        requeued = self.store.requeue_using()
        loaded = self.store.all_pending()
        spooled = {t: info for t, info in self._unspooled().items() if t not in loaded and not self.store.is_known(t)}
        with self.lock:
            for task, info in loaded.items():
                self.pending.setdefault(task, Pending(task, info))
            for task, info in spooled.items():  # submitted while Redis was away, then the process died
                self.pending.setdefault(task, Pending(task, info))
                self.unsaved.add(task)
        self.recovered = True
        log.info("recovered: %d pending, %d from the spool, %d requeued for use", len(loaded), len(spooled), requeued)

    def use_next(self) -> bool:
        """Use one queued solution, waiting briefly for one. False when there was nothing to do. Several
        workers call this at once; the store hands each queued task id to exactly one of them."""
        if not self.recovered:
            with self.recover_lock:  # once, before any worker takes: requeue_using moves every sc:using entry
                if not self.recovered:
                    self.recover()
        item = self.store.take_to_use(wait=min(IDLE_WAIT_S, self.s.redis_timeout / 2))
        if item is None:
            return False
        task, token = item
        with self.lock:
            self.in_hand.add(task)
        try:
            if not token:
                self._finish(task, False)
                return True
            ans = self.api.use(task, token)
            if ans.kind == "retry":
                self.dlq.park(task, token, "use", ans.value)
                log.warning("task %s: use failed (%s), parked in the DLQ", task, ans.value)
                self._finish(task, False)
            else:
                if ans.kind == "rejected":
                    log.error("task %s: the site rejected the solution: %s", task, ans.value)
                self.count(f"use_{ans.kind}")
                self._finish(task, ans.kind == "used")
            return True
        finally:
            with self.lock:
                self.in_hand.discard(task)

    def _finish(self, task: str, used: bool) -> None:
        try:
            self.store.finish_use(task, used)
        except db.Error:  # done with it, but sc:using still lists it: never requeue it, finish it later
            with self.lock:
                self.unfinished[task] = used

    def reap_stranded(self) -> None:
        """Requeue what sc:using holds but no user has: BLMOVE moved it there and its reply was lost
        (a connection cut or a read timed out), so the user that asked never got it. A reply comes
        within ``redis_timeout`` or never, so an id no user has held for longer than that is stranded.
        Finishes the uses whose finish_use failed first: those must not be used again."""
        with self.lock:
            unfinished = dict(self.unfinished)
        for task, used in unfinished.items():
            self.store.finish_use(task, used)
            with self.lock:
                self.unfinished.pop(task, None)
        using = self.store.using()
        now = time.monotonic()
        with self.lock:
            held = self.in_hand | set(self.unfinished)
        self.stranded = {t: self.stranded.get(t, now) for t in using if t not in held}
        for task, since in list(self.stranded.items()):
            if now - since > self.s.redis_timeout * 1.5 and self.store.requeue(task):
                log.warning("task %s: stranded in sc:using (its hand-over reply was lost), requeued", task)
                self.count("requeued_stranded")
                self.stranded.pop(task, None)

    # --- dead-letter queue -----------------------------------------------------------------------
    def reprocess_dlq(self) -> None:
        for e in self.dlq.snapshot():
            e.attempts += 1
            if e.stage == "store":
                try:
                    self.store.store_result(e.task, e.token, dedupe=self.s.dedupe_mode, work_s=CHECK_TO_ACT_S)
                except db.Error:
                    continue
                with self.lock:
                    self.pending.pop(e.task, None)
                    self.handled.add(e.task)
                self.dlq.done(e.task)
                continue
            ans = self.api.use(e.task, e.token)
            if ans.kind == "retry":
                continue
            self.dlq.done(e.task)
            self.count(f"use_{ans.kind}")
            if ans.kind == "used":
                self._quietly(self.store.mark_used, e.task)

    @staticmethod
    def _quietly(fn: Callable[..., Any], *args: Any) -> None:
        for _ in range(3):
            try:
                fn(*args)
                return
            except db.Error:
                time.sleep(IDLE_WAIT_S)

    def status(self) -> dict[str, Any]:
        try:
            stored: Any = self.store.counts()
        except db.Error as e:
            stored = {"error": type(e).__name__}
        with self.lock:
            return {"variant": self.s.variant, "pending": sorted(self.pending), "unsaved": sorted(self.unsaved),
                    "write_behind": len(self.write_behind), "counters": dict(self.counters),
                    "dlq": self.dlq.describe(), "redis": stored}
