"""The build step of a compiled target (``target.build``): run once per content, then cached.

The cache key is a hash of the build command as written (before ``${build.dir}`` is filled in)
and of every input file under the target's working folder (paths and contents; ``inputs`` globs,
default all files but hidden folders, ``node_modules`` and ``__pycache__``). The output folder is
``<cache>/<key>/`` — ``${build.dir}`` in the build command, the target's command and env — where
``<cache>`` is ``$HARNESS_BUILD_CACHE`` or ``$XDG_CACHE_HOME/chaos-harness/build``. So the 30
scenarios of a catalogue run build once, and a changed source file builds again. One builder per
key at a time (a lock file), so parallel runs wait for the first build instead of racing it.

A build that fails is one line naming the file that declared it, the command and the last line of
its output (the whole log stays in ``<cache>/<key>.failed.log``).
"""

from __future__ import annotations

import asyncio
import fcntl
import fnmatch
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

from harness.run.processes import split_command
from harness.scenario.templates import TemplateError, render
from harness.supervisor import Child, ProcessError

SKIP_DIRS = {"node_modules", "__pycache__"}
MARKER = "build.json"
MAX_INPUT_FILES = 20_000


@dataclass
class Built:
    dir: str
    cached: bool
    seconds: float
    argv: list[str]


def cache_root() -> str:
    own = os.environ.get("HARNESS_BUILD_CACHE")
    if own:
        return os.path.abspath(own)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "chaos-harness", "build")


def _inputs(cwd: str, patterns: list[str] | None, skip: str) -> list[str]:
    out = []
    for root, dirs, files in os.walk(cwd):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS
                         and os.path.join(root, d) != skip)
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(root, f), cwd)
            if patterns is None or any(fnmatch.fnmatch(rel, p) for p in patterns):
                out.append(rel)
                if len(out) > MAX_INPUT_FILES:
                    raise ProcessError(f"target.build: more than {MAX_INPUT_FILES} input files under {cwd}: "
                                       "give build.inputs (globs) or a smaller target.cwd")
    return out


def cache_key(command: str | list[str], cwd: str, patterns: list[str] | None, root: str) -> str:
    """The hash of the command as written and of the input files (names and contents)."""
    h = hashlib.sha256(json.dumps(command).encode())
    for rel in _inputs(cwd, patterns, root):
        h.update(b"\0" + rel.encode())
        try:
            with open(os.path.join(cwd, rel), "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
        except OSError:  # a dangling link, a socket: its name counts
            pass
    return h.hexdigest()[:24]


def _locked(path: str) -> Any:
    f = open(path, "a")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


async def build(command: str | list[str], cwd: str, *, patterns: list[str] | None, timeout: float,
                declared_in: str, cgroup: Any = None) -> Built:
    """The build output folder for ``command`` in ``cwd``, building it unless the cache has it."""
    root = cache_root()
    try:
        os.makedirs(root, exist_ok=True)
        key = await asyncio.to_thread(cache_key, command, cwd, patterns, root)
    except OSError as e:
        raise ProcessError(f"{declared_in}: target.build: cannot use the build cache {root}: {e.strerror} "
                           "(set HARNESS_BUILD_CACHE to another folder)") from None
    except ProcessError as e:
        raise ProcessError(f"{declared_in}: {e}") from None
    out = os.path.join(root, key)
    try:
        argv = split_command(render(command, {"build": {"dir": out}}))
    except TemplateError as e:
        raise ProcessError(f"{declared_in}: target.build: {e} (only ${{build.dir}} is filled in)") from None
    lock = await asyncio.to_thread(_locked, out + ".lock")
    try:
        if os.path.exists(os.path.join(out, MARKER)):
            return Built(out, True, 0.0, argv)
        return await _run(argv, cwd, out, timeout, declared_in, command, cgroup)
    finally:
        lock.close()


async def _run(argv: list[str], cwd: str, out: str, timeout: float, declared_in: str,
               command: str | list[str], cgroup: Any) -> Built:
    shown = command if isinstance(command, str) else " ".join(command)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    log = os.path.join(out, "build.log")
    started = time.monotonic()
    try:
        child = Child("build", argv, cwd=cwd, log_path=log, env={"HARNESS_BUILD_DIR": out}, cgroup=cgroup).start()
    except ProcessError as e:
        shutil.rmtree(out, ignore_errors=True)
        raise ProcessError(f"{declared_in}: target.build `{shown}`: {str(e).removeprefix('build: ')}") from None
    timed_out = True
    try:
        while time.monotonic() - started < timeout:
            if not child.running:
                timed_out = False
                break
            await asyncio.sleep(0.05)
    finally:
        code = child.stop(kill=True)
    seconds = round(time.monotonic() - started, 3)
    if code != 0 or timed_out:
        last = child.tail(1) or "no output"
        why = f"timed out after {timeout:g}s" if timed_out else f"exit {code}"
        failed = out + ".failed.log"
        shutil.copyfile(log, failed)
        shutil.rmtree(out, ignore_errors=True)
        raise ProcessError(f"{declared_in}: target.build `{shown}` failed ({why}): {last} (log: {failed})")
    with open(os.path.join(out, MARKER), "w") as f:
        json.dump({"command": command, "cwd": cwd, "seconds": seconds, "built": time.time()}, f)
    return Built(out, False, seconds, argv)
