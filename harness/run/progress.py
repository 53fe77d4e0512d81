"""What a person sees while scenarios run: a live line of counts on a terminal (rich), plain lines
otherwise (CI logs)."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from rich.console import Console


class Progress:
    def __init__(self, quiet: bool = False, stream: Any = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.console = Console(file=self.stream, highlight=False, force_terminal=self.tty,
                               no_color=not self.tty, width=None if self.tty else 1000, soft_wrap=True)

    def line(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)

    def start(self, name: str, variant: str | None) -> None:
        self.line(f"[bold]▶ {name}[/bold]" + (f" [dim]({variant})[/dim]" if variant else ""))

    def result(self, result: Any) -> None:
        if self.quiet:
            return
        if result.error:
            self.line(f"  [red]✗ run error:[/red] {result.error}")
        for inv in result.verdict.results if result.verdict else []:
            mark = "[green]✓[/green]" if inv.ok else ("[yellow]?[/yellow]" if not inv.exercised else "[red]✗[/red]")
            self.line(f"  {mark} {inv.name}: {inv.summary}")
        outcome = result.outcome
        for gap in result.gaps:
            self.line(f"  [yellow]?[/yellow] {gap}")
        colour = {"PASS": "green", "INCONCLUSIVE": "yellow", "INTERRUPTED": "magenta"}.get(outcome.state, "red")
        incomplete = f" (incomplete; so far {outcome.so_far})" if not outcome.complete else ""
        self.line(f"  [{colour}]{outcome.state}[/{colour}]{incomplete} in {result.duration_s:.1f}s → "
                  f"{result.run_dir}/report.html")

    async def follow(self, runner: Any, driver: Any) -> None:
        """Counts while the run goes: live on a terminal, every 5 s in a log."""
        if self.quiet:
            return
        journal = runner.host.journal
        every = 0.5 if self.tty else 5.0
        steps = {"n": 0}
        unsubscribe = journal.subscribe(lambda e: self._on_step(e, runner, steps))
        try:
            while True:
                await asyncio.sleep(every)
                elapsed = time.monotonic() - runner.t0
                text = (f"  t={elapsed:5.1f}s  sent {driver.sent} (failed {driver.failed})  "
                        f"journal {journal.seq} events")
                if self.tty:
                    self.stream.write("\r" + text[:120] + "\x1b[K")
                    self.stream.flush()
                else:
                    self.line(text)
        finally:
            unsubscribe()
            if self.tty:
                self.stream.write("\r\x1b[K")
                self.stream.flush()

    def _on_step(self, event: dict[str, Any], runner: Any, steps: dict[str, int]) -> None:
        step = str(event.get("step", ""))
        if event.get("kind") == "step" and step.startswith("timeline."):
            detail = {k: v for k, v in event.items() if k not in ("seq", "ts", "t", "kind", "step", "index")}
            if self.tty:
                self.stream.write("\r\x1b[K")
            self.line(f"  [magenta]t={event['t'] - (runner.t0 - runner.host.journal.started):5.1f}s[/magenta] "
                      f"{step.removeprefix('timeline.')} {detail if detail else ''}")
