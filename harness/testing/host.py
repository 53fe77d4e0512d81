"""The mocks of one pytest worker: started once, reset cheaply before every test.

``WorkerHost`` wraps a ``HostThread`` (every registered mock plus the control API on one background
event loop). ``reset()`` is what ``POST /reset`` does — rules cleared, service state forgotten, config
back to its start values — plus: stopped mocks listen again (same port), the rule clock (schedule
windows) restarts at zero, and the worker's Toxiproxy links lose their toxics and come back up. It
returns the journal position the next test starts after, so each test reads only its own events.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from harness.host import HostThread, MockHost
from harness.journal import Event, read_events


class WorkerHost:
    def __init__(self, run_dir: str, *, seed: int = 0, services: dict[str, dict[str, Any]] | None = None,
                 time_scale: float = 1.0, hang_limit_s: float = 60.0, tls: bool | list[str] = False):
        self.run_dir = run_dir
        self.thread = HostThread(seed=seed, services=services, run_dir=run_dir, time_scale=time_scale,
                                 hang_limit_s=hang_limit_s, tls=tls)
        self.reset_hooks: list[Callable[[], None]] = []  # e.g. the worker's links
        self.links: Any = None  # harness.testing.worker_links.WorkerLinks once a test asked for a link
        self.resets = 0

    def start(self) -> "WorkerHost":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.thread.stop()

    def __enter__(self) -> "WorkerHost":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def host(self) -> MockHost:
        assert self.thread.host is not None, "WorkerHost not started"
        return self.thread.host

    @property
    def urls(self) -> dict[str, str]:
        return self.host.urls

    @property
    def services(self) -> list[str]:
        return list(self.host.services)

    def config(self, name: str) -> dict[str, Any]:
        """A mock's current config (its start values between tests), e.g. to configure your app."""
        return self.host.services[name].config_dict()

    def call(self, fn: Any, *args: Any, timeout: float | None = 60) -> Any:
        """Run ``await fn(*args)`` on the host's event loop and return its result."""
        return self.thread.call(fn, *args, timeout=timeout)

    def reset(self) -> int:
        host = self.host

        async def _reset() -> None:
            host.reset()
            for name in host.services:
                if not host.service_running(name):
                    await host.start_service(name)
        self.call(_reset)
        for hook in self.reset_hooks:
            hook()
        host.engine.started = time.monotonic()  # schedule windows count from the test's start
        self.resets += 1
        return host.journal.seq

    @property
    def seq(self) -> int:
        return self.host.journal.seq

    def events(self, since: int = 0) -> list[Event]:
        return read_events(self.host.journal.read_since(since))
