"""The stage process of ``harness load``: the scenario runner without its traffic driver.

It starts what the scenario needs (mocks, journal, control API, redis, proxies, the target) exactly
as ``harness run`` does, tells locust the run context, plays the timeline from locust's test start,
and when locust stops waits for the last driver events, settles, stops everything and judges the
journal. It talks to locust over its stdin / stdout, one JSON object a line:

  stage → {"ready": true, "ctx": {...}, "run_id": …, "run_dir": …, "pid": …}
  locust → {"cmd": "go"}                               the test started: the timeline's t=0
  locust → {"cmd": "finish", "expect_driver": N, "locust": {...}}
  stage → {"result": {...run summary..., "load": {...}}}   then it exits

A closed stdin (locust gone) stops the run and cleans up like Ctrl-C does for ``harness run``.
Run as ``python -m harness.load.stage '<options JSON>'``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import aiohttp
import psutil

from harness.journal import kinds
from harness.run.runner import RunError, Runner, RunOptions
from harness.run.timeline import play
from harness.scenario.model import Scenario

DRIVER_WAIT_S = 10.0   # after locust stops: how long the last driver events may take to arrive


class Channel:
    """JSON lines to locust on a private copy of stdout; commands from stdin."""

    def __init__(self, out: Any):
        self.out = out
        self.reader: asyncio.StreamReader | None = None

    def send(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(obj, default=str) + "\n")
        self.out.flush()

    async def recv(self) -> dict[str, Any] | None:
        if self.reader is None:
            self.reader = asyncio.StreamReader()
            loop = asyncio.get_running_loop()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self.reader), sys.stdin)
        while True:
            line = await self.reader.readline()
            if not line:
                return None
            if line.strip():
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue


class LoadStage(Runner):
    """A ``Runner`` whose drive phase is locust's test: only ``_drive`` differs."""

    def __init__(self, scenario: Scenario, opts: RunOptions, channel: Channel, snapshot: str | None = None):
        super().__init__(scenario, opts)
        self.channel = channel
        self.snapshot = snapshot
        self.sent = 0        # driver events journaled (what locust sent), for progress and the count check
        self.failed = 0
        self.steps_done = 0
        self.load: dict[str, Any] = {}
        self.interrupted_by: str | None = None  # locust was stopped by this signal before its run time

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "driver":
            self.sent += 1
            status = event.get("status")
            if status is None or status >= 400:
                self.failed += 1
        elif kind == "step" and str(event.get("step", "")).startswith("timeline"):
            self.steps_done += 1

    async def _drive(self) -> None:
        unsubscribe = self.subscribe(self._on_event)
        try:
            await self._drive_load()
        finally:
            unsubscribe()

    async def _drive_load(self) -> None:
        sc = self.scenario
        self.channel.send({"ready": True, "ctx": self.ctx, "run_id": self.run_id,
                           "run_dir": os.path.abspath(self.run_dir), "pid": os.getpid()})
        cmd = await self.channel.recv()
        if cmd is None or cmd.get("cmd") != "go":
            raise RunError("the load test never started (locust quit before its test start)")
        self.t0 = time.monotonic()
        self.host.engine.started = self.t0
        self.record(kinds.STEP.event(step="run_started", seed=self.seed, time_scale=self.time_scale,
                                     mode="load", locust=cmd.get("locust")))
        cpu = CpuMeter(lambda: {c.proc.pid: c.name for c in self.children if c.proc is not None})
        seq0 = self.host.journal.seq
        ticker = asyncio.create_task(self.opts.progress.follow(self, self)) if self.opts.progress else None
        await asyncio.sleep(0)  # the ticker subscribes before the first step acts
        timeline = asyncio.create_task(play(sc.timeline, self))
        finish = asyncio.create_task(self.channel.recv())
        timeline_error: BaseException | None = None
        try:
            await asyncio.wait({timeline, finish}, return_when=asyncio.FIRST_COMPLETED)
            if timeline.done() and not timeline.cancelled() and timeline.exception() is not None:
                timeline_error = timeline.exception()
                self.record(kinds.STEP.event(step="timeline_error", error=str(timeline_error)[:300]))
            cmd = await finish
            window = time.monotonic() - self.t0
            self.load["cpu"] = cpu.read(window)
        finally:
            for task in (timeline, ticker, finish):
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.gather(*(t for t in (timeline, ticker, finish) if t is not None), return_exceptions=True)
        if cmd is None:
            raise RunError("locust went away during the test")
        left = len(sc.timeline) - self.steps_done
        if left > 0 and timeline_error is None:
            self.record(kinds.STEP.event(step="timeline_cut_short", steps_left=left,
                                         why="locust stopped before the timeline ended"))
        self.interrupted_by = cmd.get("interrupted")
        expect = int(cmd.get("expect_driver") or 0)
        waited = await self._wait_driver(expect)
        self.load.update(duration_s=round(window, 3), locust=cmd.get("locust") or {}, expect_driver=expect,
                         driver_events=self.sent, driver_failed=self.failed, driver_wait_s=round(waited, 3),
                         journal_events_during_load=self.host.journal.seq - seq0, timeline_steps_left=max(0, left))
        self.record(kinds.STEP.event(step="load_stopped", locust=cmd.get("locust"), driver_events=self.sent))
        await self._settle(time.monotonic() + sc.max_duration * self.time_scale)  # work in flight, capped
        if self.snapshot:
            self.load["snapshot"] = await self._snapshot(self.snapshot)
        self.record(kinds.STEP.event(step="run_finished", sent=self.sent, failed=self.failed))
        self.load["journal_events"] = self.host.journal.seq
        if timeline_error is not None:
            raise RunError(f"timeline: {timeline_error}")

    async def _wait_driver(self, expect: int) -> float:
        start = time.monotonic()
        last, stable_since = self.sent, start
        while self.sent < expect and time.monotonic() - start < DRIVER_WAIT_S:
            await asyncio.sleep(0.05)
            if self.sent != last:
                last, stable_since = self.sent, time.monotonic()
            elif time.monotonic() - stable_since > DRIVER_WAIT_S / 2:
                break  # nothing arrives any more
        return time.monotonic() - start

    async def _snapshot(self, path: str) -> Any:
        url = self.ctx["target"]["url"] + path
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    text = await resp.text()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            return {"error": f"GET {url}: {type(e).__name__}: {e}"}
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = text[:10000]
        with open(os.path.join(self.run_dir, "target-snapshot.json"), "w") as f:
            json.dump(data, f, indent=1)
        return data


class CpuMeter:
    """CPU seconds of this process (the mocks, journal and control API) and of its children (target,
    redis, proxies) from construction to ``read``."""

    def __init__(self, labels: Any = None) -> None:
        self.me = psutil.Process()
        self.labels = labels or (lambda: {})  # pid → what it is (the runner's children: target, redis-server)
        self.start = self._times()

    def _times(self) -> dict[str, tuple[str, float]]:
        out = {"stage": ("harness stage (mocks, journal, control API)", self._cpu(self.me))}
        for child in self.me.children(recursive=True):
            try:
                out[str(child.pid)] = (child.name(), self._cpu(child))
            except psutil.Error:
                continue
        return out

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        t = p.cpu_times()
        return t.user + t.system

    def read(self, window_s: float) -> dict[str, Any]:
        now = self._times()
        window_s = max(window_s, 1e-6)
        known = {str(pid): name for pid, name in self.labels().items()}
        out: dict[str, Any] = {}
        for key, (name, cpu) in now.items():
            used = cpu - self.start.get(key, (name, 0.0))[1]
            label = "stage" if key == "stage" else f"{known.get(key, name)}[{key}]"
            out[label] = {"cpu_s": round(used, 3), "cpu_percent": round(100 * used / window_s, 1)}
        return out


class _PlainStream:
    """stderr without a terminal's live line (locust owns the terminal)."""

    def write(self, s: str) -> int:
        return sys.stderr.write(s)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return False


def main(argv: list[str] | None = None) -> int:
    from harness.commands.run import run_guarded
    from harness.report import write_run_report
    from harness.report.write import run_summary
    from harness.run.progress import Progress
    from harness.scenario import ScenarioError, load_scenario

    options = json.loads((argv if argv is not None else sys.argv[1:])[0])
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed goes to stderr; stdout is the channel
    channel = Channel(out)
    try:
        scenario = load_scenario(options["scenario"], profile=options.get("profile"))
    except (ScenarioError, OSError) as e:
        channel.send({"result": None, "error": str(e)})
        return 2
    progress = None if options.get("quiet") else Progress(stream=_PlainStream())
    opts = RunOptions(seed=options.get("seed"), time_scale=float(options.get("time_scale") or 1.0),
                      report_dir=options.get("report_dir") or "reports", target_url=options.get("target_url"),
                      variant=options.get("variant"), run_id=options.get("run_id"), progress=progress)
    stage = LoadStage(scenario, opts, channel, snapshot=options.get("snapshot"))
    try:
        result = run_guarded(stage.run)
    except KeyboardInterrupt:
        channel.send({"result": None, "error": "interrupted"})
        return 130
    result.interrupted_by = result.interrupted_by or stage.interrupted_by
    locust = stage.load.get("locust") or {}
    result.counts.update({k: v for k, v in (("locust_requests", locust.get("requests")),
                                            ("locust_failures", locust.get("failures"))) if v is not None})
    write_run_report(result)
    summary = {**run_summary(result), "run_dir": os.path.abspath(result.run_dir), "load": stage.load}
    with open(os.path.join(result.run_dir, "load.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    channel.send({"result": summary})
    return result.outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
