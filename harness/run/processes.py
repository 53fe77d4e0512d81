"""Child processes the harness starts: the target (integration under test) and backing services
(redis-server). Each runs in its own process group and is always stopped: SIGTERM, then SIGKILL.
If the harness itself is killed (SIGKILL), the kernel kills them too (``PR_SET_PDEATHSIG``)."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from typing import IO

import aiohttp

from harness.ports import free_port
from harness.proxy.processes import _die_with_parent
from harness.run import orphans


class ProcessError(RuntimeError):
    pass


class ChildProcess:
    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None,
                 log_path: str | None = None, stop_timeout: float = 5.0):
        self.name, self.argv, self.cwd, self.stop_timeout = name, argv, cwd, stop_timeout
        self.env = {**os.environ, **(env or {}), orphans.ENV: orphans.owner_tag()}  # see harness.run.orphans
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        if self.argv and shutil.which(self.argv[0]) is None and not os.path.exists(self.argv[0]):
            raise ProcessError(f"{self.name}: command not found: {self.argv[0]}")
        self._log = open(self.log_path, "ab") if self.log_path else None
        try:
            # die with us even on SIGKILL (PR_SET_PDEATHSIG; the runner's thread lives for the whole run)
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                         stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as e:
            raise ProcessError(f"{self.name}: cannot start {self.argv[0]}: {e.strerror}") from None
        orphans.note_session(self.proc.pid)
        _LIVE.add(self)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, kill: bool = False) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=0 if kill else self.stop_timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        else:
            try:  # the leader exited; make sure nothing it forked lingers
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        orphans.forget_session(proc.pid)
        if self._log:
            self._log.close()
            self._log = None
        _LIVE.discard(self)
        return proc.returncode

    def tail(self, lines: int = 5) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(max(0, os.path.getsize(self.log_path) - 4000))
            return " | ".join(f.read().decode("utf-8", "replace").strip().splitlines()[-lines:])


_LIVE: set[ChildProcess] = set()


def stop_all() -> None:
    """Last-resort cleanup (atexit / signal): stop every child still running."""
    for child in list(_LIVE):
        child.stop(kill=True)


def split_command(command: str | list[str]) -> list[str]:
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # the harness's own interpreter (the venv)
    return argv


async def wait_http_ready(url: str, status: int, timeout: float, child: ChildProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if child is not None and not child.running:
                raise ProcessError(f"{child.name} exited with code {child.proc.returncode} before it was ready"
                                   + (f": {child.tail()}" if child.tail() else ""))
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == status:
                        return
                    last = f"HTTP {resp.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                last = type(e).__name__
            await asyncio.sleep(0.05)
    raise ProcessError(f"not ready after {timeout:g}s: GET {url} gave {last}"
                       + (f"; log: {child.tail()}" if child is not None and child.tail() else ""))


async def wait_tcp_ready(host: str, port: int, timeout: float, child: ChildProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.running:
            raise ProcessError(f"{child.name} exited with code {child.proc.returncode}: {child.tail()}")
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise ProcessError(f"{child.name if child else host}: port {port} not open after {timeout:g}s")


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise ProcessError("redis-server not found: install it with `apt-get install redis-server` "
                           "(make setup does this as root)")
    return path


async def start_redis(run_dir: str) -> tuple[ChildProcess, int]:
    port = free_port()
    child = ChildProcess("redis-server", [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                          "--save", "", "--appendonly", "no", "--dir", run_dir,
                                          "--protected-mode", "yes"],
                         log_path=os.path.join(run_dir, "redis.log"), stop_timeout=3)
    child.start()
    await wait_tcp_ready("127.0.0.1", port, 10, child)
    return child, port


def stop_all_of(children: list[ChildProcess]) -> None:
    for child in reversed(children):
        child.stop()
