"""Run one scenario: start what it needs, drive traffic, play the timeline, wait for the
invariants' deadlines, stop everything (always), judge the journal, write the report."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from harness import cgroups, orphans
from harness.faults.rules import Rule
from harness.host import MockHost
from harness.journal import kinds, read_events
from harness.proxy.errors import ProxyError
from harness.run import build, processes
from harness.run.scenario_links import LinkError, LinkSet, start_links
from harness.run.timeline import play
from harness.run.traffic import Driver
from harness.scenario.model import Scenario
from harness.scenario.templates import TemplateError, has_template, render
from harness.scenario.yamlpos import relpath
from harness.supervisor import Child, ProcessError, cgroup_notice, kill_group
from harness.verdict import Verdict, evaluate, settled, waits
from harness.verdict.outcome import RunVerdict, coverage_gaps, judge
from mocks.base.tls import client_env as tls_env
from mocks.registry import SERVICES, is_activity

SETTLE_POLL_S = 0.1
SETTLE_QUIET_S = 0.5


class RunError(RuntimeError):
    """The run could not be carried out (not an invariant failure): one line."""


@dataclass
class RunOptions:
    seed: int | None = None
    time_scale: float = 1.0
    report_dir: str = "reports"
    target_url: str | None = None
    variant: str | None = None
    run_id: str | None = None
    progress: Any = None  # harness.run.progress.Progress or None


@dataclass
class RunResult:
    scenario: Scenario
    run_id: str
    run_dir: str
    seed: int
    verdict: Verdict | None
    error: str | None = None
    duration_s: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)
    variant: str | None = None
    time_scale: float = 1.0
    gaps: list[str] = field(default_factory=list)  # rules that never fired, steps that never played
    interrupted_by: str | None = None              # "SIGINT" / "SIGTERM": the run was cut short

    @property
    def outcome(self) -> RunVerdict:
        return judge(self.verdict, self.gaps, self.error, self.interrupted_by)

    @property
    def ok(self) -> bool:
        return self.outcome.ok


def new_run_id(name: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{secrets.token_hex(3)}"


def scaled_rule(rule: Rule, scale: float) -> Rule:
    """Rule windows are run time: compress them with the run."""
    w = rule.schedule.window
    if w is None or scale == 1.0:
        return rule
    window = w.model_copy(update={"start": w.start * scale, "end": None if w.end is None else w.end * scale})
    return rule.model_copy(update={"schedule": rule.schedule.model_copy(update={"window": window})})


class Runner:
    """Also the timeline's ``StepTarget``: the things a timeline step can act on."""

    def __init__(self, scenario: Scenario, opts: RunOptions):
        self.scenario = scenario
        self.opts = opts
        self.seed = scenario.seed if opts.seed is None else opts.seed
        self.time_scale = opts.time_scale
        self.run_id = opts.run_id or new_run_id(scenario.name)
        self.run_dir = os.path.join(opts.report_dir, self.run_id)
        self.host: MockHost | None = None
        self.links: LinkSet | None = None
        self.target: Child | None = None
        self.target_env: dict[str, str] = {}
        self.ctx: dict[str, Any] = {}
        self.t0 = time.monotonic()
        self.children: list[Child] = []
        self.cgroup: cgroups.RunCgroup | None = None

    # --- StepTarget -------------------------------------------------------------------------------
    def record(self, event: dict[str, Any]) -> int:
        return self.host.journal.write(event)

    def subscribe(self, listener: Any) -> Any:
        return self.host.journal.subscribe(listener)

    def add_rules(self, rules: list[Rule]) -> list[str]:
        return self.host.engine.add([scaled_rule(r, self.time_scale) for r in rules])

    def remove_rules(self, ids: list[str]) -> None:
        for rid in ids:
            self.host.engine.remove(rid)

    def clear_rules(self) -> None:
        self.host.engine.clear()

    async def cut_link(self, name: str) -> None:
        await self._links().cut(name)
        self.record(kinds.STEP.event(step="link_cut", link=name))

    async def restore_link(self, name: str) -> None:
        await self._links().restore(name)
        self.record(kinds.STEP.event(step="link_restored", link=name))

    async def stop_service(self, name: str) -> None:
        self._known_service(name)
        await self.host.stop_service(name)

    async def start_service(self, name: str) -> None:
        self._known_service(name)
        await self.host.start_service(name)

    def set_config(self, service: str, patch: dict[str, Any]) -> None:
        self._known_service(service)
        self.host.services[service].update_config(render(patch, self.ctx))

    async def stop_target(self) -> None:
        if self.target is not None:
            self.target.stop(kill=True)
            self.record(kinds.STEP.event(step="target_killed"))

    async def start_target(self) -> None:
        if self.target is not None and not self.target.running:
            await self._start_target_process()

    def control_url(self) -> str:
        return self.host.urls["control"]

    def _links(self) -> Any:
        if self.links is None:
            raise RunError("the scenario cuts a link but declares no links")
        return self.links

    def _known_service(self, name: str) -> None:
        if self.host is None or name not in self.host.services:
            raise RunError(f"timeline names service {name!r}, which this scenario does not run")

    # --- the run -------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        os.makedirs(self.run_dir, exist_ok=True)
        self._write_inputs()
        started = time.monotonic()
        error = interrupted = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._start(stack)
                await self._drive()
        except (RunError, LinkError, ProxyError, ProcessError, TemplateError, OSError, ValueError) as e:
            error = str(e)
        except asyncio.CancelledError as e:  # SIGINT / SIGTERM (the CLI names the signal): judge what ran
            interrupted = str(e.args[0]) if e.args and e.args[0] else "SIGINT"
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            processes.stop_all_of(self.children)
            kill_group(self.cgroup)  # what the children forked, setsid and cleared environment included
        journal = os.path.join(self.run_dir, "journal.jsonl")
        events = read_events(journal) if os.path.exists(journal) else []  # stopped before the mocks started
        verdict = evaluate(self.scenario.expect, events) if error is None else None
        return RunResult(self.scenario, self.run_id, self.run_dir, self.seed, verdict, error,
                         round(time.monotonic() - started, 3), _counts(events),
                         self.ctx.get("target", {}).get("variant"), self.time_scale,
                         coverage_gaps(events, self.scenario.timeline), interrupted)

    def _write_inputs(self) -> None:
        with open(os.path.join(self.run_dir, "scenario.json"), "w") as f:
            json.dump(self.scenario.model_dump(mode="json", by_alias=True, exclude_none=True), f, indent=1)
        with open(os.path.join(self.run_dir, "run.json"), "w") as f:
            json.dump({"run_id": self.run_id, "scenario": self.scenario.name, "seed": self.seed,
                       "time_scale": self.time_scale, "target_url": self.opts.target_url,
                       "variant": self.opts.variant, "started": time.time()}, f, indent=1)

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        sc = self.scenario
        services = {n: c for n, c in sc.services.items() if n in SERVICES}
        static = {n: {k: v for k, v in c.items() if not has_template(v)} for n, c in services.items()}
        self.host = MockHost(seed=self.seed, journal_path=os.path.join(self.run_dir, "journal.jsonl"),
                             services=static, ports=sc.ports, run_dir=self.run_dir, time_scale=self.time_scale,
                             tls=sc.tls)
        await self.host.start()
        stack.push_async_callback(self.host.stop)
        self.ctx = {"run": {"id": self.run_id, "dir": os.path.abspath(self.run_dir), "seed": self.seed,
                            "tls_ca": self.host.ctx.tls_ca or ""},
                    "time_scale": self.time_scale, "control": {"url": self.host.urls["control"]}}
        for name, mock in self.host.services.items():
            url = self.host.urls[name]
            self.ctx[name] = {"url": url, "direct_url": url, "config": mock.config_dict(),
                              "host": "127.0.0.1", "port": int(url.rsplit(":", 1)[1])}
        killed = orphans.sweep() + cgroups.sweep_stale()  # what killed harness runs' children forked and left
        if killed:
            self.record(kinds.STEP.event(step="orphans_killed", pids=killed))
        self.cgroup = cgroups.RunCgroup.create(self.run_id)
        if self.cgroup is None:
            self.record(kinds.STEP.event(step="no_cgroup", why=cgroup_notice()))
        if "redis" in sc.services:
            child, port = await processes.start_redis(self.run_dir, self.cgroup)
            self.children.append(child)
            self.ctx["redis"] = {"host": "127.0.0.1", "port": port, "url": f"redis://127.0.0.1:{port}/0",
                                 "direct_url": f"redis://127.0.0.1:{port}/0"}
        target_port = processes.free_port()
        variant = next((v for v in (self.opts.variant, sc.target.variant if sc.target else None) if v is not None),
                       "correct")  # "" is a variant too (--variant "")
        self.ctx["target"] = {"port": target_port, "variant": variant,
                              "url": self.opts.target_url or f"http://127.0.0.1:{target_port}"}
        if sc.links:
            self.links = await start_links(self.host, self.ctx, sc.links, stack)
        self.ctx["target"]["callback_url"] = self.ctx["target"].get("callback_url", self.ctx["target"]["url"])
        for name, config in services.items():
            templated = {k: v for k, v in config.items() if has_template(v)}
            if templated:
                self.host.services[name].update_config(render(templated, self.ctx))
                self.ctx[name]["config"] = self.host.services[name].config_dict()
        if sc.target is not None and self.opts.target_url is None:
            if sc.target.url is not None:
                self.ctx["target"]["url"] = render(sc.target.url, self.ctx)
            if sc.target.command is not None:
                await self._build_target()
                await self._start_target_process()
                stack.callback(lambda: self.target and self.target.stop())
            else:
                await processes.wait_http_ready(self.ctx["target"]["url"] + sc.target.ready.path,
                                                sc.target.ready.status, sc.target.ready.timeout)
        self.record(kinds.STEP.event(step="run_ready", target=self.ctx["target"]["url"], variant=variant))

    async def _build_target(self) -> None:
        """``target.build``: the cached build output, or a build now (harness/run/build.py)."""
        sc = self.scenario
        assert sc.target is not None
        if sc.target.build is None:
            return
        cwd = sc.target.cwd or os.getcwd()
        if not os.path.isdir(cwd):
            raise ProcessError(f"target: working folder does not exist: {cwd}")
        built = await build.build(sc.target.build.command, cwd, patterns=sc.target.build.inputs,
                                  timeout=sc.target.build.timeout, declared_in=relpath(sc.profile) if sc.profile else f"scenario {sc.name}",
                                  cgroup=self.cgroup)
        self.ctx["build"] = {"dir": built.dir}
        self.record(kinds.STEP.event(step="target_built", argv=built.argv, build_dir=built.dir, cached=built.cached,
                                     seconds=built.seconds))

    async def _start_target_process(self) -> None:
        sc = self.scenario
        assert sc.target is not None and sc.target.command is not None
        env = tls_env(self.host.ctx.tls_ca) if self.host.ctx.tls_ca else {}  # the scenario's env wins
        env.update({k: str(render(v, self.ctx)) for k, v in sc.target.env.items()})
        env.update(HARNESS_TIME_SCALE=str(self.time_scale), HARNESS_RUN_ID=self.run_id,
                   HARNESS_RUN_DIR=os.path.abspath(self.run_dir),
                   HARNESS_TARGET_PORT=str(self.ctx["target"]["port"]))
        argv = processes.split_command(render(sc.target.command, self.ctx))
        cwd = render(sc.target.cwd, self.ctx) if sc.target.cwd else os.getcwd()
        if not os.path.isdir(cwd):
            raise ProcessError(f"target: working folder does not exist: {cwd}")
        self.target = Child("target", argv, env=env, cwd=cwd,
                            log_path=os.path.join(self.run_dir, "target.log"),
                            stop_timeout=sc.target.stop_timeout, cgroup=self.cgroup).start()
        self.children.append(self.target)
        self.record(kinds.STEP.event(step="target_started", argv=argv, pid=self.target.proc.pid))
        await processes.wait_http_ready(self.ctx["target"]["url"] + sc.target.ready.path, sc.target.ready.status,
                                        sc.target.ready.timeout, self.target)

    async def _drive(self) -> None:
        sc = self.scenario
        self.t0 = time.monotonic()
        self.host.engine.started = self.t0  # rule windows count from here
        self.record(kinds.STEP.event(step="run_started", seed=self.seed, time_scale=self.time_scale))
        driver = Driver(sc.traffic, self.ctx, self.record, self.seed, self.time_scale)
        progress = self.opts.progress
        deadline = self.t0 + sc.max_duration * self.time_scale
        timeline = asyncio.create_task(play(sc.timeline, self))
        traffic = asyncio.create_task(driver.run())
        ticker = asyncio.create_task(progress.follow(self, driver)) if progress else None
        try:
            done, _ = await asyncio.wait({timeline, traffic}, timeout=max(0.0, deadline - time.monotonic()),
                                         return_when=asyncio.ALL_COMPLETED)
            for task in done:
                task.result()  # surface errors
            if sc.settle:
                await asyncio.sleep(min(sc.settle * self.time_scale, max(0.0, deadline - time.monotonic())))
            await self._settle(deadline)
            await self.host.drain(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
        finally:
            for task in (timeline, traffic, ticker):
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.gather(*(t for t in (timeline, traffic, ticker) if t is not None), return_exceptions=True)
        self.record(kinds.STEP.event(step="run_finished", sent=driver.sent, failed=driver.failed))

    async def _settle(self, deadline: float) -> None:
        """Wait for the work in flight: until no invariant waits for anything (a task still being
        solved, a solution not yet used within its deadline), or ``deadline`` (max_duration)."""
        if not waits(self.scenario.expect):
            return
        until = deadline
        quiet = SETTLE_QUIET_S * self.time_scale
        while time.monotonic() < until:
            now = time.monotonic() - self.host.journal.started
            events = read_events(self.host.journal.read_since(0))
            last = max((e.t for e in events if _activity(e)), default=0.0)
            # settled, and nothing on the wire for a moment (a late duplicate would show up here)
            if now - last >= quiet and settled(self.scenario.expect, events, now):
                return
            await asyncio.sleep(SETTLE_POLL_S)


def _activity(e: Any) -> bool:
    """Events that mean the integration is still settling (callbacks, driver answers, the requests
    a service counts as activity, e.g. using a result) — not its polls, which a buggy client may
    never stop."""
    return e.kind in ("callback", "driver") or (e.kind == "request" and is_activity(e.service, e.action))


def _counts(events: list[Any]) -> dict[str, Any]:
    by_kind: dict[str, int] = {}
    faults = 0
    for e in events:
        by_kind[e.kind] = by_kind.get(e.kind, 0) + 1
        if e.kind == "decision" and e.get("fired"):
            faults += 1
    return {"events": len(events), "requests": by_kind.get("request", 0), "callbacks": by_kind.get("callback", 0),
            "driver": by_kind.get("driver", 0), "faults": faults}


async def run_scenario(scenario: Scenario, opts: RunOptions | None = None) -> RunResult:
    return await Runner(scenario, opts or RunOptions()).run()
