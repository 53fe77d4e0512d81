"""Start the integration under test as a child process for a test suite.

``start_app(command, env=…)`` picks a free port (passed as ``PORT`` and ``HARNESS_TARGET_PORT``),
starts the command in its own process group (``python`` means this interpreter), waits until
``GET <url><ready_path>`` answers ``ready_status`` and returns an ``App`` (``url``, ``port``, ``log``,
``stop()``, a context manager). The process is always stopped: SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import requests

from harness.ports import free_port
from harness import orphans
from harness.run.processes import split_command
from harness.supervisor import Child, ProcessError


class App:
    def __init__(self, child: Child, port: int):
        self.child = child
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    @property
    def log(self) -> str:
        """The last lines of the app's stdout/stderr."""
        return self.child.tail(20)

    @property
    def running(self) -> bool:
        return self.child.running

    def stop(self, kill: bool = False) -> None:
        self.child.stop(kill=kill)

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_app(command: str | list[str], env: dict[str, Any] | None = None, *, ready_path: str = "/health",
              ready_status: int = 200, cwd: str | None = None, timeout: float = 30.0,
              log_path: str | None = None, name: str = "app") -> App:
    orphans.sweep()  # what killed test sessions' apps forked and left
    port = free_port()
    full_env = {"PORT": str(port), "HARNESS_TARGET_PORT": str(port), **{k: str(v) for k, v in (env or {}).items()}}
    log_path = log_path or os.path.join(tempfile.mkdtemp(prefix=f"harness-{name}-"), f"{name}.log")
    child = Child(name, split_command(command), env=full_env, cwd=cwd, log_path=log_path).start()
    app = App(child, port)
    deadline = time.monotonic() + timeout
    last = "no answer"
    try:
        while time.monotonic() < deadline:
            if not child.running:
                raise child.exited()
            try:
                if requests.get(app.url + ready_path, timeout=2).status_code == ready_status:
                    return app
                last = "wrong status"
            except requests.RequestException as e:
                last = type(e).__name__
            time.sleep(0.05)
        raise ProcessError(f"{name} not ready after {timeout:g}s ({last}): {child.tail()}")
    except BaseException:
        child.stop(kill=True)
        raise
