"""The exploration: draw candidates, run each like ``harness run``, shrink what fails, confirm it.

1. baseline runs of the base with no fault (``repeats`` of them): a run error stops here; an
   invariant that fails in most of them is not judged afterwards (it is no fault's doing);
2. candidates ``1, 2, …`` (``generate.candidate``; with ``--sweep`` the cells of ``sweep.grid``),
   ``jobs`` at a time, until the budget, the run count or the grid is spent; a candidate FAILs when
   an exercised invariant does not hold;
3. a FAIL whose invariant is new, or whose faults do not contain a known failure's minimal faults,
   is shrunk (``shrink.shrink``; each step re-runs the candidate ``repeats`` times and keeps it
   when it fails the same invariant in every one of them), written as a plain scenario
   file, and confirmed: that file, loaded as ``harness run`` loads it, is run ``confirm`` times
   (the failure rate reported) and the report of a failing run is kept;
4. failures are told apart by (invariant, minimal fault signature): a repeat counts as ``seen``.

Ctrl-C (or SIGTERM) ends the search; what was found — a shrink cut short included — is kept.
"""

from __future__ import annotations

import asyncio
import collections
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Awaitable, Callable

from harness.explore.candidate import Base
from harness.explore.faults import Fault
from harness.explore.generate import candidate, run_seed
from harness.explore.shrink import Shrunk, Stop, shrink
from harness.explore.sweep import grid as sweep_grid


@dataclass
class Options:
    seed: int = 0
    budget_s: float | None = None     # wall-clock for the search (and the shrinks)
    runs: int | None = None           # candidates to try (instead of a budget)
    jobs: int = 1
    time_scale: float = 1.0
    repeats: int = 3                  # runs per shrink step
    confirm: int = 5                  # runs of the written minimal scenario
    until: tuple[str, ...] = ()       # stop the search once one of these invariants has failed (≥ 9/10)
    sweep: int = 0                    # > 0: the sweep's grid at this many start times, not random draws
    out_dir: str = "reports/explore"

    @property
    def need(self) -> int:
        """Failing runs (of ``repeats``) for a shrink step to count as still failing: all of them. A
        simpler version that fails only now and then would trade the reproduction rate for a step."""
        return max(1, self.repeats)

    @property
    def most(self) -> int:
        """Failing runs (of ``repeats``) without faults for an invariant not to be judged: two thirds."""
        return max(1, math.ceil(self.repeats * 2 / 3))


@dataclass
class Judged:
    failed: dict[str, str]   # invariant → its summary, for the exercised invariants that did not hold
    error: str | None
    result: Any


@dataclass
class Failure:
    invariant: str
    summary: str
    found_run: int            # the candidate that first showed it
    found_after_s: float
    seed: int                 # the run seed (written in the scenario file)
    original: list[Fault]
    faults: list[Fault]       # minimal
    shrunk: Shrunk | None = None
    fails: int = 0            # confirmation runs that failed it …
    tries: int = 0            # … of these
    file: str = ""
    report: str | None = None
    seen: int = 1             # candidates that hit it

    @property
    def signature(self) -> tuple[str, tuple[str, ...]]:
        return self.invariant, tuple(sorted(f.signature for f in self.faults))

    @property
    def flaky(self) -> bool:
        """Confirmed in fewer than two thirds of its runs: maybe not the faults' doing."""
        return bool(self.tries) and self.fails * 3 < self.tries * 2

    @property
    def weak(self) -> bool:
        """Confirmed in fewer than 9 of 10 runs: ``--until`` searches on for a better one."""
        return bool(self.tries) and self.fails * 10 < self.tries * 9

    @property
    def rate(self) -> str:
        return f"{self.fails}/{self.tries}" if self.tries else "-"


class Interrupted(Exception):
    """SIGINT / SIGTERM during the search."""


class ExploreError(Exception):
    """The exploration cannot go on (the base does not run): one line."""


@dataclass
class Explorer:
    base: Base
    opts: Options
    progress: Any = None                     # harness.explore.progress.Progress
    write: Callable[["Explorer", Failure], Awaitable[None]] | None = None   # report.write_failure
    failures: list[Failure] = field(default_factory=list)
    runs: int = 0                            # every run (search, shrink, confirmation)
    candidates: int = 0
    errors: int = 0
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)
    shrinking: str = ""
    without_faults: dict[str, str] = field(default_factory=dict)   # invariant → how it failed at baseline
    grid: list[list[Fault]] | None = None    # the sweep's candidates (``sweep.grid``), when sweeping
    # what the candidates' runs proved: PASS (faults fired, every invariant exercised and held),
    # INCONCLUSIVE (nothing failed, but not everything happened), FAIL, ERROR — and why not PASS
    tally: collections.Counter = field(default_factory=collections.Counter)
    why: collections.Counter = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        if self.opts.sweep and self.grid is None:
            self.grid = sweep_grid(self.base.menu, self.opts.sweep)

    @property
    def last(self) -> int | None:
        """The last candidate's index, when the run count or the grid bounds the search."""
        bounds = [n for n in (self.opts.runs, len(self.grid) if self.grid is not None else None) if n is not None]
        return min(bounds) if bounds else None

    def draw(self, index: int) -> list[Fault]:
        """Candidate ``index`` (from 1): the grid's cell, or the seeded random draw."""
        if self.grid is not None:
            return self.grid[index - 1]
        return candidate(self.base.menu, self.opts.seed, index)

    @property
    def runs_dir(self) -> str:
        return os.path.join(self.opts.out_dir, "runs")

    def time_left(self) -> float | None:
        if self.opts.budget_s is None:
            return None
        return self.opts.budget_s - (time.monotonic() - self.started)

    def out_of_time(self) -> bool:
        left = self.time_left()
        return left is not None and left <= 0

    def tick(self, **state: Any) -> None:
        if self.progress is not None:
            self.progress.update(self, **state)

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress.say(text)

    # --- running ---------------------------------------------------------------------------------
    async def run_scenario(self, scenario: Any, keep: bool = False) -> Judged:
        from harness.run.runner import RunOptions, Runner
        opts = RunOptions(time_scale=self.opts.time_scale, report_dir=self.runs_dir)
        try:
            result = await Runner(scenario, opts).run()
        except Exception as e:  # a harness bug in one run must not end the exploration
            self.runs += 1
            self.errors += 1
            return Judged({}, f"{type(e).__name__}: {e}", None)
        self.runs += 1
        if result.interrupted_by:
            raise Interrupted(result.interrupted_by)
        failed = {r.name: r.summary for r in (result.verdict.results if result.verdict else [])
                  if not r.ok and r.exercised and r.name not in self.base.skip}
        if result.error:
            self.errors += 1
        if not keep:
            shutil.rmtree(result.run_dir, ignore_errors=True)
        self.tick()
        return Judged(failed, result.error, result)

    async def run_faults(self, faults: list[Fault], seed: int) -> Judged:
        return await self.run_scenario(self.base.scenario_of(faults, seed))

    async def gather(self, coros: list[Awaitable[Judged]]) -> list[Judged]:
        """Run these together; a signal (the main task cancelled) becomes ``Interrupted``."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        try:
            return list(await asyncio.gather(*tasks))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise Interrupted("SIGINT") from None

    # --- the exploration -------------------------------------------------------------------------
    async def explore(self) -> None:
        os.makedirs(self.runs_dir, exist_ok=True)
        try:
            await self._baseline()
            await self._search()
        except Interrupted:
            self.interrupted = True

    async def _baseline(self) -> None:
        """``repeats`` runs of the base with no fault: an invariant failing in most of them is no
        fault's doing and is not judged; one failing now and then is flaky (said, still judged)."""
        self.tick(phase="baseline runs (no faults)")
        n = self.opts.repeats
        judged: list[Judged] = []
        while len(judged) < n:
            batch = min(self.opts.jobs, n - len(judged))
            judged += await self.gather([self.run_faults([], run_seed(self.opts.seed, 0)) for _ in range(batch)])
        errors = [j.error for j in judged if j.error]
        if errors:
            raise ExploreError(f"the base scenario does not run without faults: {errors[0]}")
        failed: dict[str, list[str]] = {}
        for j in judged:
            for name, summary in j.failed.items():
                failed.setdefault(name, []).append(summary)
        for name, summaries in failed.items():
            self.without_faults[name] = f"{len(summaries)}/{n} runs: {summaries[0]}"
            if len(summaries) >= self.opts.most:
                self.base.skip.add(name)
                self.say(f"not judged: {name} fails without any fault in {len(summaries)}/{n} runs ({summaries[0]})")
            else:
                self.say(f"flaky: {name} failed without any fault in {len(summaries)}/{n} runs ({summaries[0]}); "
                         "still judged, see the failure rates")

    def reached(self) -> str | None:
        """The ``until`` invariant found: failed (shrunk, and confirmed in at least 9 of 10 runs — a
        weaker one is kept and the search goes on), or failing without faults."""
        found = [f.invariant for f in self.failures if not f.weak] + sorted(self.base.skip)
        return next((name for name in found if name in self.opts.until), None)

    def _more(self, index: int) -> bool:
        if self.reached() is not None:
            return False
        if self.last is not None and index > self.last:
            return False
        return self.opts.runs is not None or not self.out_of_time()

    async def _search(self) -> None:
        index = 1
        last = self.last or math.inf
        while self._more(index):
            batch = [index + k for k in range(self.opts.jobs) if index + k <= last]
            drawn = [(i, self.draw(i), run_seed(self.opts.seed, i)) for i in batch]
            index += len(batch)
            self.tick(phase="searching")
            judged = await self.gather([self.run_faults(faults, seed) for _, faults, seed in drawn])
            self.candidates += len(batch)
            for j in judged:
                state, reasons = self.proved(j)
                self.tally[state] += 1
                self.why.update({re.sub(r"\d+(\.\d+)?", "N", r) for r in reasons})   # grouped: numbers as N
            for (i, faults, seed), j in zip(drawn, judged):  # in index order: same seed, same search
                if j.failed:
                    await self._found(i, faults, seed, j)

    def proved(self, judged: Judged) -> tuple[str, list[str]]:
        """A candidate run's state as ``harness run`` would give it, leaving out the invariants not
        judged (they fail without faults); for INCONCLUSIVE, its reasons (which rule never fired,
        which invariant was never exercised)."""
        from harness.verdict.outcome import INCONCLUSIVE, judge
        if judged.failed:
            return "FAIL", []
        result = judged.result
        if judged.error or result is None:
            return "ERROR", []
        kept = result.verdict and SimpleNamespace(results=[r for r in result.verdict.results
                                                           if r.name not in self.base.skip])
        verdict = judge(kept, result.gaps, result.error)
        return verdict.state, verdict.reasons if verdict.state == INCONCLUSIVE else []

    def _known(self, invariant: str, faults: list[Fault]) -> Failure | None:
        """A failure of this invariant whose minimal faults are all among these faults."""
        have = [f.signature for f in faults]
        for known in self.failures:
            if known.invariant != invariant:
                continue
            left = list(have)
            if all(sig in left and not left.remove(sig) for sig in (f.signature for f in known.faults)):
                return known
        return None

    async def _found(self, index: int, faults: list[Fault], seed: int, judged: Judged) -> None:
        chase = None
        for name in judged.failed:
            known = self._known(name, faults)
            if known is not None:
                known.seen += 1
            elif chase is None:
                chase = name
        if chase is None:
            return
        failure = Failure(chase, judged.failed[chase], index, round(time.monotonic() - self.started, 1), seed,
                          faults, faults)
        self.say(f"run {index}: FAIL {chase} ({judged.failed[chase]}) with {len(faults)} faults; shrinking")
        failure.shrunk = await shrink(faults, lambda trial: self._still_fails(trial, seed, chase),
                                      on_step=lambda s: self.tick(phase=f"shrinking {chase}", shrink=s))
        failure.faults = failure.shrunk.faults
        duplicate = next((f for f in self.failures if f.signature == failure.signature), None)
        if duplicate is not None:
            duplicate.seen += 1
        else:
            self.failures.append(failure)
            if self.write is not None:
                await self.write(self, failure)   # confirms it unless interrupted
        if self.interrupted:
            raise Interrupted("SIGINT")

    async def _still_fails(self, faults: list[Fault], seed: int, invariant: str) -> bool:
        if self.out_of_time() or self.interrupted:
            raise Stop
        if not faults:
            return False
        try:
            return await self._fails_enough(faults, seed, invariant)
        except Interrupted:
            self.interrupted = True  # keep the smallest failing candidate so far
            raise Stop from None

    async def _fails_enough(self, faults: list[Fault], seed: int, invariant: str) -> bool:
        fails = tries = 0
        while tries < self.opts.repeats:
            batch = min(self.opts.jobs, self.opts.repeats - tries)
            judged = await self.gather([self.run_faults(faults, seed) for _ in range(batch)])
            tries += batch
            fails += sum(invariant in j.failed for j in judged)
            if fails >= self.opts.need:
                return True
            if fails + self.opts.repeats - tries < self.opts.need:
                return False
        return False

    async def confirm(self, scenario: Any, invariant: str, times: int) -> tuple[int, int, Any]:
        """Run the written scenario ``times`` times: (failed, ran, a failing run's result, kept)."""
        fails = ran = 0
        kept = None
        while ran < times:
            batch = min(self.opts.jobs, times - ran)
            judged = await self.gather([self.run_scenario(scenario, keep=True) for _ in range(batch)])
            ran += batch
            for j in judged:
                if j.result is None:
                    continue
                if invariant in j.failed and kept is None:
                    kept = j.result
                    fails += 1
                    continue
                fails += invariant in j.failed
                shutil.rmtree(j.result.run_dir, ignore_errors=True)
        return fails, ran, kept
