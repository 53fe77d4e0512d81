"""Run the service mocks and the control API in one asyncio process.

``MockHost`` is what ``harness serve``, the scenario runner and the pytest fixtures start. Every
listener binds 127.0.0.1 unless asked otherwise; port 0 picks a free port.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import tempfile
from collections.abc import Collection
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from harness import loops
from harness.accept import BatchAcceptSite
from harness.faults import RuleEngine
from harness.journal import Journal, kinds
from mocks.base.server import HttpServer
from mocks.base.service import MockContext, ServiceMock
from mocks.registry import available


class _ClientFaultsInOneLine(logging.Filter):
    """aiohttp logs a malformed request (which it answers with 400) or a client that hangs up in the
    middle of a body with a full traceback at ERROR. Those are the client's doing, and fuzzing or a
    chaos run makes many: log them as one WARNING line instead. Real server errors keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and (exc.code or 400) < 500:
            why = f"{exc.code} {(exc.message or '').strip().splitlines()[0] if exc.message else type(exc).__name__}"
        elif isinstance(exc, (web.RequestPayloadError, ConnectionResetError)):
            why = str(exc).strip().splitlines()[-1].strip() or type(exc).__name__
        else:
            return True
        record.msg, record.args = "%s: %s", (record.getMessage(), why)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


logging.getLogger("aiohttp.server").addFilter(_ClientFaultsInOneLine())


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback one (``""`` binds every interface)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP) if host else []
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def open_door(control_host: str, token: str | None) -> str | None:
    """Why a control API on ``control_host`` with ``token`` would be an open door, or None."""
    if token or is_loopback(control_host):
        return None
    return (f"the control API on {control_host} would be open to the network without a token "
            "(give control_token, or insecure_no_token=True)")


BACKLOG = 1024  # pending connections per listener (the kernel caps it at net.core.somaxconn)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


class _Listener:
    def __init__(self, app: web.Application, host: str, port: int, ssl_context: Any = None):
        self.app, self.host, self.port, self.ssl_context = app, host, port, ssl_context
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self.runner.setup()
        # accepts up to BACKLOG pending connections per wake-up, on uvloop too (harness/accept.py)
        await BatchAcceptSite(self.runner, sock, ssl_context=self.ssl_context, backlog=BACKLOG).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def running(self) -> bool:
        return self.runner is not None


class _MockListener:
    """A service mock's port: its pipeline (``ServiceMock.serve``) on the mocks' own HTTP/1.1 server."""

    def __init__(self, mock: ServiceMock, host: str, port: int, ssl_context: Any = None):
        self.mock, self.host, self.port, self.ssl_context = mock, host, port, ssl_context
        self.server: HttpServer | None = None

    async def start(self) -> None:
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self.server = HttpServer(self.mock.name, self.mock.serve, commit=self.mock.ctx.journal.flush)
        self.server.start(sock, self.ssl_context, BACKLOG)

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop()

    @property
    def running(self) -> bool:
        return self.server is not None


class MockHost:
    def __init__(self, *, seed: int = 0, journal_path: str | None = None,
                 services: dict[str, dict[str, Any]] | None = None, ports: dict[str, int] | None = None,
                 host: str = "127.0.0.1", control_port: int = 0, tls: bool | Collection[str] = False,
                 control_token: str | None = None, time_scale: float = 1.0, run_dir: str | None = None,
                 hang_limit_s: float = 300.0, service_classes: dict[str, type[ServiceMock]] | None = None,
                 control_host: str | None = None, insecure_no_token: bool = False):
        control_host = control_host or host
        door = open_door(control_host, control_token)
        if door and not insecure_no_token:
            raise ValueError(door)
        self.run_dir = run_dir or tempfile.mkdtemp(prefix="harness-")
        self.journal = Journal(journal_path or os.path.join(self.run_dir, "journal.jsonl"))
        self.engine = RuleEngine(seed=seed, record=self.journal.write, hold=self.journal.hold)
        self.seed = seed
        self.host = host
        self.control_token = control_token
        self.tls = None  # TLS material when any service is served over https (tls: True = every one)
        if tls:
            from mocks.base.tls import make_tls
            self.tls = make_tls(os.path.join(self.run_dir, "tls"))
        self.ctx = MockContext(self.engine, self.journal, seed=seed, hang_limit_s=hang_limit_s,
                               time_scale=time_scale, tls_ca=self.tls.ca_path if self.tls else None)
        known = {**available(), **(service_classes or {})}
        wanted = services if services is not None else {name: {} for name in known}
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise ValueError(f"unknown service(s): {', '.join(unknown)} (have: {', '.join(known) or 'none'})")
        ports = ports or {}
        self.services: dict[str, ServiceMock] = {}
        self._listeners: dict[str, _MockListener] = {}
        ssl_context = self.tls.server_context() if self.tls else None
        for name, config in wanted.items():
            mock = known[name](self.ctx, config or {})
            self.services[name] = mock
            self._listeners[name] = _MockListener(mock, host, ports.get(name, 0),
                                                  ssl_context if tls is True or name in (tls or ()) else None)
        from harness.control.api import build_control_app
        self._control = _Listener(build_control_app(self), control_host, control_port)

    def url(self, name: str) -> str:
        lst = self._control if name == "control" else self._listeners[name]
        scheme = "https" if lst.ssl_context is not None else "http"
        host = f"[{lst.host}]" if ":" in lst.host else lst.host
        return f"{scheme}://{host}:{lst.port}"

    @property
    def urls(self) -> dict[str, str]:
        urls = {name: self.url(name) for name in self.services}
        urls["control"] = self.url("control")
        return urls

    async def start(self) -> dict[str, str]:
        started: list[_Listener | _MockListener] = []
        try:
            for lst in [*self._listeners.values(), self._control]:
                await lst.start()
                started.append(lst)
        except BaseException:
            for lst in started:
                await lst.stop()
            raise
        self.ctx.urls.update(self.urls)
        for mock in self.services.values():
            await mock.start()
        self.journal.write(kinds.STEP.event(step="host_started", urls=self.urls, seed=self.seed))
        return self.urls

    async def drain(self, timeout: float = 5.0) -> None:
        """Let callbacks in flight finish (bounded) so a stop does not cut them off mid-delivery."""
        left = 0
        for mock in self.services.values():
            left += await mock.drain(timeout)
        if left:
            self.journal.write(kinds.STEP.event(step="callbacks_cut_off", count=left))

    async def stop(self) -> None:
        for mock in self.services.values():
            await mock.stop()
        for lst in [*self._listeners.values(), self._control]:
            await lst.stop()
        if not self.journal_closed:
            self.journal.write(kinds.STEP.event(step="host_stopped"))
            self.journal.close()

    def observes_proxied(self) -> bool:
        """Does a mock want to see the requests that pass the mitm links (``wants_proxied``)?"""
        return any(getattr(m, "wants_proxied", lambda: False)() for m in self.services.values())

    @property
    def journal_closed(self) -> bool:
        return self.journal.closed

    def service_running(self, name: str) -> bool:
        return self._listeners[name].running

    async def stop_service(self, name: str) -> None:
        """Kill a mock: its port stops listening (clients get connection refused)."""
        await self._listeners[name].stop()
        self.journal.write(kinds.STEP.event(step="service_stopped", service=name))

    async def start_service(self, name: str) -> None:
        lst = self._listeners[name]
        if not lst.running:
            await lst.start()
        self.journal.write(kinds.STEP.event(step="service_started", service=name))

    def reset(self) -> None:
        self.engine.clear()
        for mock in self.services.values():
            mock.reset()
        self.journal.write(kinds.STEP.event(step="reset"))


class HostThread:
    """A ``MockHost`` on its own event loop in a background thread, for synchronous callers
    (pytest fixtures, locust). ``call(coro_fn)`` runs a coroutine on the host's loop."""

    def __init__(self, **host_kwargs: Any):
        self._kwargs = host_kwargs
        self._loop = loops.LoopThread("harness-host")
        self.host: MockHost | None = None

    def start(self) -> dict[str, str]:
        self._loop.start()

        async def _start() -> dict[str, str]:
            self.host = MockHost(**self._kwargs)
            return await self.host.start()
        try:
            return self.call(_start)
        except BaseException:
            self.stop()
            raise

    def call(self, fn: Any, *args: Any, timeout: float | None = 60) -> Any:
        return self._loop.call(fn, *args, timeout=timeout)

    def stop(self) -> None:
        if self.host is not None and self._loop.alive and not self._loop.loop.is_closed():
            try:
                self.call(self.host.stop, timeout=10)
            except Exception:
                pass
        self._loop.stop()

    def __enter__(self) -> "HostThread":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
