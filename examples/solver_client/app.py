"""Reference CaptchaAI solver client: a small Flask service that gets captchas solved and uses each
solution exactly once, following the pingback patterns of CaptchaAI's own guidance.

  POST /solve      {"sitekey", "pageurl", "method"?} → in.php with pingback=<CALLBACK_URL>/pingback;
                   retries busy / transient errors with backoff; 202 {"task": id}
  GET|POST /pingback?id=&code=   accepts known task ids only (404 otherwise); stores the result in
                   Redis once (dedupe on task id) *before* answering OK; ERROR_CAPTCHA_UNSOLVABLE →
                   the job is submitted again (UNSOLVABLE_RESUBMITS)
  GET /status      pending tasks, DLQ, Redis counters;   GET /health

Background: fallback polling of res.php for tasks without a pingback after CALLBACK_TIMEOUT, every
POLL_INTERVAL; USE_WORKERS users that take stored results from Redis and POST each token to SITE_URL
once; a dead-letter queue (results that could not be stored or used) reprocessed every
DLQ_RETRY_INTERVAL. Served by waitress with SERVER_THREADS handler threads.

Bug variants (VARIANT=…), each a classic mistake:
  callback_only          no fallback polling: a lost pingback is a lost solution
  unbounded_polling      no pingback; res.php polled in a tight loop from the first moment
  non_idempotent         no dedupe: a duplicated (or late) pingback's solution is used twice
  ack_before_store       acknowledges the pingback, stores it later from memory: a crash loses it
  dlq_never_reprocessed  parks failed stores / uses in the DLQ and never retries them
  check_then_act         dedupes by "already stored?" then "store", with work in between: copies of a
                         pingback that arrive together are all stored and used
  gives_up_not_ready     the fallback poller gives a task up on its first CAPCHA_NOT_READY
  error_as_solution      a pingback's ERROR_CAPTCHA_UNSOLVABLE is stored and used like a token

Env: PORT, SOLVER_URL, SOLVER_KEY, CALLBACK_URL, REDIS_URL, SITE_URL, VARIANT, CALLBACK_TIMEOUT
(120), POLL_INTERVAL (5), POLL_GIVE_UP (600), DLQ_RETRY_INTERVAL (10), SUBMIT_RETRIES (5),
SUBMIT_BACKOFF (5), UNSOLVABLE_RESUBMITS (2), HTTP_TIMEOUT (30), REDIS_TIMEOUT (2),
WRITE_BEHIND_DELAY (1), USE_WORKERS (16), SERVER_THREADS (8), SPOOL_PATH (a local file for tasks submitted
while Redis is away, so they survive a crash; default: memory only), HARNESS_TIME_SCALE (1).
See docs/examples-solver.md.
"""

from __future__ import annotations

import logging
import os
import sys

from flask import Flask, jsonify, request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import workers  # noqa: E402
from client import SolverClient, SubmitError  # noqa: E402
from settings import Settings  # noqa: E402


def create_app(settings: Settings) -> tuple[Flask, SolverClient]:
    app = Flask(__name__)
    client = SolverClient(settings)

    @app.post("/solve")
    def solve():
        body = request.get_json(silent=True) or {}
        if not isinstance(body, dict):
            return jsonify(ok=False, error="expected a JSON object"), 400
        job = {"method": str(body.get("method") or "userrecaptcha"), "sitekey": str(body.get("sitekey") or ""),
               "pageurl": str(body.get("pageurl") or "")}
        if not job["sitekey"] or not job["pageurl"]:
            return jsonify(ok=False, error="sitekey and pageurl are required"), 400
        try:
            task = client.submit(job)
        except SubmitError as e:
            return jsonify(ok=False, error=str(e)), 503
        return jsonify(ok=True, task=task), 202

    @app.route("/pingback", methods=["GET", "POST"])
    def pingback():
        status, text = client.on_pingback(request.values.get("id", "").strip(),
                                          request.values.get("code", "").strip())
        return text, status, {"Content-Type": "text/plain; charset=utf-8"}

    @app.get("/status")
    def status():
        return jsonify(client.status())

    @app.get("/health")
    def health():
        return jsonify(ok=True, variant=settings.variant, redis=client.store.ping())

    return app, client


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N" under load
    settings = Settings.from_env()
    app, client = create_app(settings)
    workers.start(client)
    # A production WSGI server, not Flask's dev server (which answers every request with Connection:
    # close and starts a thread per connection, so under load the accept backlog overflows and the
    # solver's pingbacks time out): keep-alive, a fixed pool of handler threads, room for the hundreds
    # of connections users and pingbacks keep open (poll(), not select(), past 1024 descriptors).
    import waitress
    waitress.serve(app, host="127.0.0.1", port=settings.port, threads=settings.server_threads,
                   connection_limit=1000, asyncore_use_poll=True, ident="solver_client")


if __name__ == "__main__":
    main()
