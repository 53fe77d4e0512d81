"""What one locust process of ``harness load`` holds, and its locust event hooks.

- standalone or ``--master``: starts the stage process at ``init`` (mocks, proxies, target), says go
  at ``test_start`` (the timeline's t=0) and, at ``quitting``, hands over locust's request count and
  takes the verdict: the exit code is that of ``harness run`` (0 PASS, 1 FAIL, 2 run error,
  3 INCONCLUSIVE, 130 / 143 when SIGINT / SIGTERM stopped the test before its run time ended:
  INTERRUPTED, with the verdict so far in the report);
- standalone or ``--worker``: runs the users and journals their requests; a worker learns the run
  context from the master (a ``harness_ctx`` message) and reports its journaling figures with its
  stats.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections import defaultdict
from typing import Any

import gevent
import requests
from gevent.event import Event
from locust import between, constant
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from harness.load.driver_journal import DriverJournal
from harness.load.stage_client import StageError, StageProcess
from harness.load.users import build_user_classes
from harness.load.vars_sync import SyncVarMaker
from harness.scenario.variables import service_configs

log = logging.getLogger("harness.load")

OPTIONS_ENV = "HARNESS_LOAD_OPTIONS"
CTX_MESSAGE = "harness_ctx"
READY_WAIT_S = 120.0
N_STRIDE = 10_000_000  # worker k numbers its ${n} from k·N_STRIDE + 1


def wait_time_of(spec: str | None) -> Any:
    """``"0.5:1.5"`` → between(0.5, 1.5); ``"1"`` → constant(1)."""
    text = (spec or "0.5:1.5").strip()
    lo, _, hi = text.partition(":")
    return between(float(lo), float(hi)) if hi else constant(float(lo))


class LoadSession:
    def __init__(self, options: dict[str, Any]):
        from harness.scenario import load_scenario
        self.options = options
        self.scenario = load_scenario(options["scenario"], profile=options.get("profile"))
        self.time_scale = float(options.get("time_scale") or 1.0)
        self.seed = self.scenario.seed if options.get("seed") is None else int(options["seed"])
        self.user_classes = build_user_classes(self.scenario.traffic, self, wait_time_of(options.get("wait")))
        self.ctx: dict[str, Any] = {}
        self.ready = Event()
        self.mode = "local"
        self.environment: Any = None
        self.stage: StageProcess | None = None
        self.journal: DriverJournal | None = None
        self.t_start: float | None = None
        self.counters: dict[int, int] = defaultdict(int)
        self.makers: dict[int, SyncVarMaker] = {}
        self.http = requests.Session()
        self.worker_figures: dict[str, dict[str, int]] = {}
        self.result: dict[str, Any] | None = None
        self.signal: str | None = None  # "SIGTERM" once locust got it (its own handler shuts down)

    @classmethod
    def from_env(cls) -> "LoadSession":
        raw = os.environ.get(OPTIONS_ENV)
        if not raw:
            raise SystemExit(f"harness load: {OPTIONS_ENV} is not set; start locust through `harness load`")
        return cls(json.loads(raw))

    # --- for the users ------------------------------------------------------------------------
    @property
    def worker_index(self) -> int:
        runner = self.environment.runner if self.environment else None
        return max(0, int(getattr(runner, "worker_index", 0) or 0))

    def wait_ready(self) -> None:
        if not self.ready.wait(READY_WAIT_S):
            from locust.exception import StopUser
            log.error("no run context from the master after %gs; stopping this user", READY_WAIT_S)
            raise StopUser()

    def elapsed(self) -> float:
        return time.monotonic() - (self.t_start if self.t_start is not None else time.monotonic())

    def next_n(self, flow_index: int) -> int:
        self.counters[flow_index] += 1
        offset = self.worker_index * N_STRIDE if self.mode == "worker" else 0
        return offset + self.counters[flow_index]

    def var_maker(self, flow_index: int) -> SyncVarMaker:
        maker = self.makers.get(flow_index)
        if maker is None:
            # worker 0 / standalone: the seeds the traffic driver uses for the same flow
            seed = self.seed * 1000 + flow_index + 1_000_003 * self.worker_index
            configs = service_configs(self.ctx)
            maker = self.makers[flow_index] = SyncVarMaker(seed, self.ctx["control"]["url"], self.http, configs)
        return maker

    # --- locust events -----------------------------------------------------------------------
    def install(self, events: Any) -> None:
        # registered before locust's own SIGTERM handler (which quits), so it runs first
        gevent.signal_handler(signal.SIGTERM, lambda: setattr(self, "signal", "SIGTERM"))
        events.init.add_listener(self.on_init)
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        events.quitting.add_listener(self.on_quitting)
        events.worker_connect.add_listener(self.on_worker_connect)
        events.report_to_master.add_listener(self.on_report_to_master)
        events.worker_report.add_listener(self.on_worker_report)

    def _set_ctx(self, ctx: dict[str, Any]) -> None:
        self.ctx = ctx
        if self.journal is None:
            self.journal = DriverJournal(ctx["control"]["url"], interval=float(self.options.get("flush", 0.05)))
        self.ready.set()

    def _to_workers(self) -> dict[str, Any]:
        # the master's --wait governs the workers' users (a worker's own --wait is not asked for)
        return {"ctx": self.ctx, "wait": self.options.get("wait")}

    def _from_master(self, data: dict[str, Any]) -> None:
        wait_time = wait_time_of(data.get("wait"))
        for cls in self.user_classes.values():
            cls.wait_time = wait_time
        self._set_ctx(data["ctx"])

    def on_init(self, environment: Any, runner: Any, **_: Any) -> None:
        self.environment = environment
        if isinstance(runner, WorkerRunner):
            self.mode = "worker"
            runner.register_message(CTX_MESSAGE, lambda msg, **_kw: self._from_master(msg.data))
            return
        self.mode = "master" if isinstance(runner, MasterRunner) else "local"
        stage_options = {k: v for k, v in self.options.items() if k not in ("wait", "flush")}
        self.stage = StageProcess(stage_options)
        log.info("starting the stage: mocks, proxies and target of %s", self.scenario.name)
        try:
            ready = self.stage.start()
        except StageError as e:
            print(f"harness load: run error: {e}", file=sys.stderr)
            self._print_result(self.stage.result)
            raise SystemExit(2) from None
        self._set_ctx(ready["ctx"])
        environment.host = self.ctx["target"]["url"]
        print(f"harness load: {self.scenario.name}: target {environment.host}, control {self.ctx['control']['url']}, "
              f"run {ready['run_dir']}", file=sys.stderr)
        if isinstance(runner, MasterRunner):
            runner.send_message(CTX_MESSAGE, self._to_workers())

    def on_worker_connect(self, client_id: str, **_: Any) -> None:
        if self.mode == "master" and self.ready.is_set():
            self.environment.runner.send_message(CTX_MESSAGE, self._to_workers(), client_id=client_id)

    def on_test_start(self, environment: Any, **_: Any) -> None:
        if self.mode == "master":
            environment.runner.send_message(CTX_MESSAGE, self._to_workers())  # reaches each worker before its users
        if self.mode in ("master", "local") and self.stage is not None:
            opts = environment.parsed_options
            self.stage.go({"users": getattr(opts, "num_users", None), "spawn_rate": getattr(opts, "spawn_rate", None),
                           "run_time": getattr(opts, "run_time", None), "mode": self.mode})
        if self.mode in ("local", "worker"):
            if self.t_start is None:
                self.t_start = time.monotonic()
            gevent.spawn(self._start_journal)

    def _start_journal(self) -> None:
        self.ready.wait(READY_WAIT_S)
        if self.journal is not None:
            self.journal.start()

    def on_test_stop(self, **_: Any) -> None:
        if self.mode in ("local", "worker") and self.journal is not None:
            self.journal.flush()

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if self.journal is not None:
            data["harness_driver"] = self.journal.figures()

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if "harness_driver" in data:
            self.worker_figures[client_id] = data["harness_driver"]

    def driver_figures(self) -> dict[str, int]:
        if self.mode == "local":
            return self.journal.figures() if self.journal else {}
        total: dict[str, int] = defaultdict(int)
        for figures in self.worker_figures.values():
            for k, v in figures.items():
                total[k] += v
        return {**total, "workers": len(self.worker_figures)}

    def on_quitting(self, environment: Any, **_: Any) -> None:
        runner = environment.runner
        interrupted = None
        if self.mode != "worker" and runner is not None and runner.state in (STATE_RUNNING, STATE_SPAWNING):
            runner.stop()  # quitting while users run (SIGTERM, web UI): stop them first, workers included
            interrupted = self.signal or "SIGINT"
        if self.journal is not None:
            self.journal.close()
        if self.mode == "worker" or self.stage is None:
            return
        if getattr(environment.parsed_options, "csv_prefix", None):
            # locust rewrites its CSV files once a second and not at exit: with the users stopped,
            # let it write once more, so the CSV holds the final figures, as the HTML and verdict do
            gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)
        self._save_html(environment)
        stats = environment.stats.total
        locust = {"requests": stats.num_requests, "failures": stats.num_failures,
                  "rps": round(stats.total_rps, 2), "p50_ms": stats.get_response_time_percentile(0.5),
                  "p95_ms": stats.get_response_time_percentile(0.95),
                  "p99_ms": stats.get_response_time_percentile(0.99),
                  "max_ms": round(stats.max_response_time or 0, 1), "user_errors": len(environment.runner.exceptions),
                  "driver": self.driver_figures()}
        self.result = self.stage.finish(stats.num_requests, locust, interrupted)
        self._print_result(self.result)
        if self.result is None:
            environment.process_exit_code = 130 if interrupted == "SIGINT" else (143 if interrupted else 2)
        else:
            environment.process_exit_code = int(self.result.get("exit_code", 2))

    @staticmethod
    def _save_html(environment: Any) -> None:
        """Locust writes --html only when its run ends by itself; on SIGTERM it skips it. Not we."""
        path = getattr(environment.parsed_options, "html_file", None)
        if not path or os.path.exists(path):
            return
        try:
            from locust.html import get_html_report
            with open(path, "w", encoding="utf-8") as f:
                f.write(get_html_report(environment, show_download_link=False))
        except Exception as e:  # the verdict matters more than the stats page
            log.warning("could not write %s: %s", path, e)

    def _print_result(self, result: dict[str, Any] | None) -> None:
        if result is None:
            if self.stage is not None and self.stage.error:
                print(f"harness load: run error: {self.stage.error}", file=sys.stderr)
            return
        out = [f"harness load: {result.get('state')} {result.get('scenario')} (run {result.get('run_id')})"]
        if result.get("error"):
            out.append(f"  ✗ run error: {result['error']}")
        for inv in result.get("invariants") or []:
            mark = "✓" if inv["ok"] else ("?" if inv.get("exercised") is False else "✗")
            out.append(f"  {mark} {inv['name']}: {inv['summary']}")
        out += [f"  ? {gap}" for gap in result.get("gaps") or []]
        if result.get("state") == "INTERRUPTED":
            out.append(f"  ! {(result.get('reasons') or ['interrupted'])[0]}")
        load = result.get("load") or {}
        if load:
            locust = load.get("locust") or {}
            out.append(f"  locust: {locust.get('requests')} requests ({locust.get('failures')} failed); "
                       f"journal: {load.get('driver_events')} driver events, {load.get('journal_events')} events in all")
            stage_cpu = (load.get("cpu") or {}).get("stage")
            if stage_cpu:
                out.append(f"  harness CPU: {stage_cpu['cpu_s']} s ({stage_cpu['cpu_percent']}% of one core)")
        run_dir = result.get("run_dir")
        if run_dir:
            out.append(f"  report: {os.path.join(run_dir, 'report.html')}"
                       + (f" · locust: {os.path.join(run_dir, 'locust.html')}"
                          if os.path.exists(os.path.join(run_dir, 'locust.html')) else ""))
        print("\n".join(out), file=sys.stderr)
