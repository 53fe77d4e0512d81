"""Before a run starts anything: every program it will need exists. A missing one is one line naming
the scenario file, line and field that needs it and how to get it (``CliError``, exit 2), instead
of a run that fails half-started."""

from __future__ import annotations

import os
import shutil
from typing import Any, Callable

from harness.cli import CliError


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def toxiproxy_server() -> None:
    if os.environ.get("TOXIPROXY_URL"):
        return  # a running server is used
    from harness.proxy.toxiproxy_server import find_server_binary
    find_server_binary()


def mitmdump() -> None:
    from harness.proxy.mitm import MitmError, find_mitmdump
    found = find_mitmdump()
    if not _executable(found) and not shutil.which(found):
        raise MitmError(f"mitmdump not found at {found} (MITMDUMP): run `make setup` or fix MITMDUMP")


def redis_server() -> None:
    from harness.run.processes import redis_server_binary
    redis_server_binary()


def command(argv0: str) -> None:
    if shutil.which(argv0) is None and not os.path.exists(argv0):  # as ChildProcess.start looks it up
        raise FileNotFoundError(f"command not found: {argv0}")


def folder(path: str) -> None:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no such folder: {path}")


SCRIPT_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".ts", ".rb", ".php", ".pl", ".jar", ".sh")


def script(argv: list[str], cwd: str) -> None:
    """An interpreter's script argument (``python app.py``, ``node server.js``) exists in ``cwd``."""
    arg = argv[1]
    if arg.startswith("-") or not arg.endswith(SCRIPT_SUFFIXES):
        return
    path = os.path.normpath(os.path.join(cwd, arg))
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path} (the target's working folder is {cwd})")


def port_free(port: int) -> None:
    from harness.host import bind
    bind("127.0.0.1", port).close()   # OSError: "cannot listen on 127.0.0.1:<port>: Address already in use"


def proxies(toxiproxy_url: str | None, mitm: bool) -> None:
    """``harness serve --proxies``: the binaries its proxy stack starts."""
    checks: list[Callable[[], None]] = [] if toxiproxy_url else [toxiproxy_server]
    if mitm:
        checks.append(mitmdump)
    for check in checks:
        try:
            check()
        except Exception as e:  # ToxiproxyNotFound, MitmError: their text says how to fix it
            raise CliError(f"--proxies: {e}") from None


def scenario(path: str, sc: Any, target_given: bool) -> None:
    """The programs scenario ``sc`` (loaded from ``path``) starts: redis-server, toxiproxy-server,
    mitmdump, the target command."""
    from harness.run.processes import split_command
    from harness.scenario.templates import has_template
    needs: list[tuple[tuple[Any, ...], Callable[[], None]]] = []
    if "redis" in sc.services:
        needs.append((("services", "redis"), redis_server))
    if sc.links:
        needs.append((("links",), toxiproxy_server))
    needs += [(("links", i, "mitm"), mitmdump) for i, link in enumerate(sc.links) if link.mitm][:1]
    needs += [(("ports", svc), lambda p=port: port_free(p)) for svc, port in sc.ports.items()]
    if sc.target is not None and sc.target.command is not None and not target_given:
        argv = split_command(sc.target.command)
        cwd = sc.target.cwd or os.getcwd()
        if sc.target.cwd is not None and not has_template(cwd):
            needs.append((("target", "cwd"), lambda: folder(cwd)))
        if argv and not has_template(argv[0]):
            needs.append((("target", "command"), lambda: command(argv[0])))
        if len(argv) > 1 and not has_template(argv[1]):
            needs.append((("target", "command"), lambda: script(argv, cwd)))
        builder = split_command(sc.target.build.command)[:1] if sc.target.build is not None else []
        if builder and not has_template(builder[0]):
            needs.append((("target", "build"), lambda: command(builder[0])))
    for field, check in needs:
        try:
            check()
        except Exception as e:
            raise CliError(f"{_where(path, field, sc.profile)}: {e}") from None


def _where(path: str, field: tuple[Any, ...], profile: str | None = None) -> str:
    """``file:line: field`` of the scenario (or of the profile, for what came from it)."""
    from harness.scenario.loader import load_document
    from harness.scenario.yamlpos import ScenarioError, load_yaml, relpath, where
    if profile is not None and field[:1] == ("ports",):  # a fixed port the profile gives?
        _, ppos = load_yaml(relpath(profile))
        own = ("services", field[1], "port")
        if own in ppos:
            return f"{where(ppos, own, relpath(profile))}: {_field(own)}"
    if profile is not None and field[:1] == ("target",):  # the target came from the profile
        path = profile
    try:
        _, positions = load_yaml(relpath(path)) if path == profile else load_document(path)
    except (ScenarioError, OSError):
        return f"{relpath(path)}: {_field(field)}"
    return f"{where(positions, field, relpath(path))}: {_field(field)}"


def _field(field: tuple[Any, ...]) -> str:
    from harness.scenario.loader import dotted
    return dotted(field)
