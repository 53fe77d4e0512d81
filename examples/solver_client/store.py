"""Durable state in Redis. Every method raises ``redis.RedisError`` when the database is unreachable;
callers decide what to do (the dead-letter queue, a retry, a 503).

Keys:
  sc:pending   hash  task id → JSON {job, submitted_at (unix), resubmits}: tasks without a result yet
  sc:results   hash  task id → token: every result ever stored (the dedupe record)
  sc:to_use    list  task ids whose token waits to be used
  sc:using     list  task ids being used right now (moved back to to_use after a crash, or when no
               user holds one: the reply that handed it over was lost)
  sc:used      set   task ids whose token was used
  sc:failed    hash  task id → reason (unsolvable, unknown to the solver, given up)
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

PENDING, RESULTS, TO_USE, USING, USED, FAILED = ("sc:pending", "sc:results", "sc:to_use", "sc:using", "sc:used",
                                                 "sc:failed")

# Store a result once: the first writer wins and queues the token for use; later writers are no-ops.
_STORE_ONCE = """
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('RPUSH', KEYS[3], ARGV[1])
  return 1
end
return 0
"""
# Back to the queue, if it is still in sc:using (a user may have finished it since it was looked at).
_REQUEUE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""
# The non-idempotent way: store and queue whatever arrives.
_STORE_ALWAYS = """
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[1])
return 1
"""

Error = redis.RedisError


class Store:
    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url, timeout
        self._local = threading.local()
        self._once = self.r.register_script(_STORE_ONCE)      # run with client=self.r (the caller's connection)
        self._always = self.r.register_script(_STORE_ALWAYS)
        self._requeue = self.r.register_script(_REQUEUE)

    @property
    def r(self) -> redis.Redis:
        """This thread's client, with its own connection. One client shared by all the threads serializes
        every command on its pool's lock, and under the GIL that lock convoys: the thread it is handed to
        holds it while it waits its turn for the interpreter, and every other thread queues behind."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = redis.Redis.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0), decode_responses=True)
        return client

    def ping(self) -> bool:
        try:
            return bool(self.r.ping())
        except Error:
            return False

    # --- pending tasks -------------------------------------------------------------------------
    def add_pending(self, task_id: str, info: dict[str, Any]) -> None:
        self.r.hset(PENDING, task_id, json.dumps(info))

    def drop_pending(self, task_id: str) -> None:
        self.r.hdel(PENDING, task_id)

    def all_pending(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.r.hgetall(PENDING).items()}

    def is_known(self, task_id: str) -> bool:
        pipe = self.r.pipeline(transaction=False)
        pipe.hexists(PENDING, task_id)
        pipe.hexists(RESULTS, task_id)
        pipe.hexists(FAILED, task_id)
        return any(pipe.execute())

    def mark_failed(self, task_id: str, reason: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(PENDING, task_id)
        pipe.hset(FAILED, task_id, reason)
        pipe.execute()

    # --- results ---------------------------------------------------------------------------------
    def store_result(self, task_id: str, token: str, dedupe: str = "atomic", work_s: float = 0.0) -> bool:
        """Store and queue for use. True if this call stored it, False if it was already stored.
        ``dedupe``: ``atomic`` (one script), ``none`` (store whatever arrives), or ``check_then_act`` —
        the check_then_act bug: look, do ``work_s`` of other work, then write; two copies that arrive
        together both find nothing stored and both queue the token."""
        if dedupe == "check_then_act":
            if self.r.hexists(RESULTS, task_id):
                return False
            time.sleep(work_s)
            dedupe = "none"
        script = self._once if dedupe == "atomic" else self._always
        return bool(script(keys=[RESULTS, PENDING, TO_USE], args=[task_id, token], client=self.r))

    def take_to_use(self, wait: float) -> tuple[str, str] | None:
        """The next queued task id (moved to_use → using) and its token; None after ``wait`` seconds without
        one. BLMOVE hands each queued id to exactly one of the workers blocked on it."""
        task_id = self.r.blmove(TO_USE, USING, wait, "LEFT", "RIGHT")
        if task_id is None:
            return None
        return task_id, self.r.hget(RESULTS, task_id) or ""

    def finish_use(self, task_id: str, used: bool) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.lrem(USING, 1, task_id)
        if used:
            pipe.sadd(USED, task_id)
        pipe.execute()

    def mark_used(self, task_id: str) -> None:
        self.r.sadd(USED, task_id)

    def using(self) -> list[str]:
        return self.r.lrange(USING, 0, -1)

    def requeue(self, task_id: str) -> bool:
        """One task id from sc:using back to sc:to_use; False if it was no longer in sc:using."""
        return bool(self._requeue(keys=[USING, TO_USE], args=[task_id], client=self.r))

    def requeue_using(self) -> int:
        """After a crash: what was being used goes back to the queue (at-least-once; the site refuses a
        second use of a token, which the client counts as used)."""
        n = 0
        while self.r.lmove(USING, TO_USE, "RIGHT", "LEFT") is not None:
            n += 1
        return n

    def counts(self) -> dict[str, int]:
        pipe = self.r.pipeline(transaction=False)
        for key in (PENDING, RESULTS, FAILED):
            pipe.hlen(key)
        pipe.llen(TO_USE)
        pipe.llen(USING)
        pipe.scard(USED)
        pending, results, failed, to_use, using, used = pipe.execute()
        return {"pending": pending, "results": results, "failed": failed, "to_use": to_use, "using": using,
                "used": used}
