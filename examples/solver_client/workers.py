"""Background threads of the client: the fallback poller, the users of solutions (``USE_WORKERS``
threads: a use is two Redis round trips, a POST to the site and one more round trip, so one thread
alone uses at most one solution per that sum), the dead-letter queue reprocessor, the reaper of ids
stranded in sc:using, and (only in the ack_before_store variant) the write-behind flusher. Which ones
run depends on the variant — that is how most bug variants differ."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import store as db
from client import IDLE_WAIT_S, SolverClient

log = logging.getLogger("solver_client")


def _loop(name: str, body: Callable[[], object], pause: Callable[[], float]) -> threading.Thread:
    def run() -> None:
        while True:
            try:
                body()
            except db.Error as e:  # the database is away: try again a bit later
                log.debug("%s: %s", name, type(e).__name__)
                time.sleep(IDLE_WAIT_S)
            except Exception:  # a worker must survive anything one task does
                log.exception("%s failed", name)
                time.sleep(IDLE_WAIT_S)
            wait = pause()
            if wait > 0:
                time.sleep(wait)

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    return t


def start(client: SolverClient) -> list[threading.Thread]:
    s = client.s
    threads = []

    for i in range(s.use_workers):  # each waits in Redis (BLMOVE) while nothing is queued
        threads.append(_loop(f"user-{i}", client.use_next, lambda: 0.0))
    if s.polls:
        tick = min(0.1, s.poll_interval)
        threads.append(_loop("poller", client.poll_due, lambda: tick))
    if s.reprocesses_dlq:
        threads.append(_loop("dlq", client.reprocess_dlq, lambda: s.dlq_retry_interval))
        threads.append(_loop("reaper", client.reap_stranded, lambda: s.redis_timeout / 2))
    if s.variant == "ack_before_store":
        threads.append(_loop("write-behind", client.flush_write_behind, lambda: 0.05))
    return threads
