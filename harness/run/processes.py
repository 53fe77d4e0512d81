"""The run's own children: the target's command line, redis-server, and waiting (on the event loop)
until they answer. Starting and stopping them is ``harness.supervisor``'s job."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sys
import time

import aiohttp

from harness.cgroups import RunCgroup
from harness.ports import free_port
from harness.supervisor import Child, ProcessError

__all__ = ["ProcessError", "free_port", "split_command", "wait_http_ready", "wait_tcp_ready",
           "redis_server_binary", "start_redis", "stop_all_of"]


def split_command(command: str | list[str]) -> list[str]:
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # the harness's own interpreter (the venv)
    return argv


async def wait_http_ready(url: str, status: int, timeout: float, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if child is not None and not child.running:
                raise child.exited()
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


async def wait_tcp_ready(host: str, port: int, timeout: float, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.running:
            raise child.exited()
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


async def start_redis(run_dir: str, cgroup: RunCgroup | None = None) -> tuple[Child, int]:
    port = free_port()
    child = Child("redis-server", [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", run_dir,
                                   "--protected-mode", "yes"],
                  log_path=os.path.join(run_dir, "redis.log"), stop_timeout=3, cgroup=cgroup).start()
    await wait_tcp_ready("127.0.0.1", port, 10, child)
    return child, port


def stop_all_of(children: list[Child]) -> None:
    for child in reversed(children):
        child.stop()
