"""The timeline player: steps run in file order; each waits for its time (``at``, on the run clock)
or its trigger (``after``: the first journal event matching a filter, seen from run start), plus
``delay``, then acts on the mocks, links, or target. Every step is journaled."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import aiohttp

from harness.journal import kinds
from harness.scenario.model import Step
from harness.verdict.base import event_matches


class StepTarget(Protocol):
    """What the timeline acts on (implemented by the runner)."""

    t0: float
    time_scale: float

    def record(self, event: dict[str, Any]) -> int: ...
    def add_rules(self, rules: list[Any]) -> list[str]: ...
    def remove_rules(self, ids: list[str]) -> None: ...
    def clear_rules(self) -> None: ...
    async def cut_link(self, name: str) -> None: ...
    async def restore_link(self, name: str) -> None: ...
    async def stop_service(self, name: str) -> None: ...
    async def start_service(self, name: str) -> None: ...
    def set_config(self, service: str, patch: dict[str, Any]) -> None: ...
    async def stop_target(self) -> None: ...
    async def start_target(self) -> None: ...
    def control_url(self) -> str: ...
    def subscribe(self, listener: Any) -> Any: ...


class EventWaiter:
    """Counts journal events matching a filter from when it is made, and wakes waiters."""

    def __init__(self, run: StepTarget, where: dict[str, Any]):
        self.where = where
        self.count = 0
        self.first_t: float | None = None
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = run.subscribe(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "step" and event.get("step", "").startswith("timeline"):
            return
        if event_matches(event, self.where):
            self.count += 1
            if self.first_t is None:
                self.first_t = time.monotonic()
            self._loop.call_soon_threadsafe(self._changed.set)

    async def wait(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.count < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                return self.count >= count
        return True

    def close(self) -> None:
        self._unsubscribe()


async def play(steps: list[Step], run: StepTarget) -> None:
    # "after" triggers and wait_for conditions count events from run start: subscribe first
    triggers = {i: EventWaiter(run, s.after) for i, s in enumerate(steps) if s.after is not None}
    waits = {i: EventWaiter(run, s.wait_for.where) for i, s in enumerate(steps) if s.wait_for is not None}
    try:
        for i, step in enumerate(steps):
            if step.at is not None:
                await _sleep_until(run.t0 + step.at * run.time_scale)
            elif i in triggers:
                ok = await triggers[i].wait(1, timeout=3600)
                if not ok:
                    run.record(kinds.STEP.event(step="timeline_skipped", index=i, why="trigger never seen"))
                    continue
            if step.delay:
                await asyncio.sleep(step.delay * run.time_scale)
            await _act(i, step, run, waits.get(i))
    finally:
        for w in [*triggers.values(), *waits.values()]:
            w.close()


async def _sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _emit(step: Step, run: StepTarget) -> dict[str, Any]:
    """``POST {control}/<service>/emit``: the service starts sending and answers at once."""
    e = step.emit
    payload = {"event": e.event, "body": e.body, "count": e.count, "within_s": e.within * run.time_scale}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{run.control_url()}/{e.service}/emit", json=payload,
                                timeout=aiohttp.ClientTimeout(total=30)) as resp:
            return {"service": e.service, "event": e.event, "count": e.count, "status": resp.status,
                    "response": (await resp.text())[:500]}


async def _act(i: int, step: Step, run: StepTarget, waiter: EventWaiter | None) -> None:
    action = step.action
    detail: dict[str, Any] = {}
    if action == "add_rules":
        detail["ids"] = run.add_rules(step.add_rules or [])
    elif action == "remove_rules":
        run.remove_rules(step.remove_rules or [])
        detail["ids"] = step.remove_rules
    elif action == "clear_rules":
        run.clear_rules()
    elif action == "cut_link":
        await run.cut_link(step.cut_link)
        detail["link"] = step.cut_link
    elif action == "restore_link":
        await run.restore_link(step.restore_link)
        detail["link"] = step.restore_link
    elif action == "stop_service":
        await run.stop_service(step.stop_service)
    elif action == "start_service":
        await run.start_service(step.start_service)
    elif action == "set_config":
        for service, patch in (step.set_config or {}).items():
            run.set_config(service, patch)
    elif action == "control":
        call = step.control
        async with aiohttp.ClientSession() as session:
            async with session.request(call.method, run.control_url() + call.path, json=call.json_body,
                                       timeout=aiohttp.ClientTimeout(total=30)) as resp:
                detail.update(status=resp.status, response=(await resp.text())[:500])
    elif action == "emit":
        detail.update(await _emit(step, run))
    elif action == "wait_for":
        detail["met"] = await waiter.wait(step.wait_for.count, step.wait_for.timeout * run.time_scale)
    elif action == "stop_target":
        await run.stop_target()
    elif action == "start_target":
        await run.start_target()
    elif action == "note":
        detail["note"] = step.note
    run.record(kinds.STEP.event(step=f"timeline.{action}", index=i, **detail))
