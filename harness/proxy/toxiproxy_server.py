"""Find, start and always stop a Toxiproxy server — or use one that is already running.

``ToxiproxyServer()`` uses ``TOXIPROXY_URL`` when set (an existing server; never stopped by us),
otherwise starts the binary from ``TOXIPROXY_SERVER``, ``toxiproxy-server`` on PATH, the checkout's
``.tools/bin/toxiproxy-server`` (what ``make setup`` installs; only when running from a checkout), or
the user cache (``harness toxiproxy install``: ``~/.cache/chaos-harness/bin``), on a free loopback
port, and waits until ``GET /version`` answers. ``stop()`` / ``with`` / atexit / parent death stop it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.catalogue import checkout
from harness.ports import free_port
from harness.proxy.errors import ProxyError
from harness.proxy.toxiproxy_client import ToxiproxyClient, ToxiproxyError
from harness.supervisor import Child, ProcessError, wait_until

VERSION = "2.12.0"
BINARY = "toxiproxy-server"
# the checkout's copy (what `make setup` installs); None when installed from a wheel
TOOLS_BINARY = checkout() / ".tools" / "bin" / BINARY if checkout() is not None else None


def cache_dir() -> Path:
    """Where ``harness toxiproxy install`` puts the server: ``$XDG_CACHE_HOME/chaos-harness/bin``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "chaos-harness" / "bin"


def install_hint() -> str:
    own = "run `harness toxiproxy install` (builds it with Go into the user cache)"
    return f"run `make setup` (installs it into .tools/bin) or {own[4:]}" if TOOLS_BINARY is not None else own


class ToxiproxyNotFound(ProxyError, RuntimeError):
    """No server binary and no ``TOXIPROXY_URL``; ``str()`` is one line saying how to fix it."""


def find_server_binary() -> str:
    env = os.environ.get("TOXIPROXY_SERVER")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        raise ToxiproxyNotFound(f"TOXIPROXY_SERVER={env} is not an executable file ({install_hint()})")
    on_path = shutil.which(BINARY)
    if on_path:
        return on_path
    for path in (TOOLS_BINARY, cache_dir() / BINARY):
        if path is not None and path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise ToxiproxyNotFound(f"toxiproxy-server not found on PATH or in {cache_dir()}: {install_hint()}, "
                            "or set TOXIPROXY_SERVER=/path/to/binary or TOXIPROXY_URL=http://host:port")


class ToxiproxyServer:
    def __init__(self, url: str | None = None, *, binary: str | None = None, host: str = "127.0.0.1",
                 log_path: str | None = None, start_timeout_s: float = 10.0):
        self.given_url = url if url is not None else (os.environ.get("TOXIPROXY_URL") or None)
        self.url: str | None = None
        self.binary, self.host, self.log_path = binary, host, log_path
        self.start_timeout_s = start_timeout_s
        self.process: Child | None = None
        self.client: ToxiproxyClient | None = None
        self.version: str | None = None

    @property
    def owned(self) -> bool:
        """True when we started the server (and so will stop it)."""
        return self.process is not None

    def start(self) -> "ToxiproxyServer":
        if self.client is not None:
            return self
        if self.given_url:
            client = ToxiproxyClient(self.given_url)
            try:
                self.version = client.version()
            except ToxiproxyError as e:
                raise ToxiproxyError(f"TOXIPROXY_URL={self.given_url}: {e}") from None
            self.client, self.url = client, client.url
            return self
        binary = self.binary or find_server_binary()
        log_path, temp_log = self.log_path, self.log_path is None
        last_error = ""
        for _ in range(3):  # a free port can be taken between our probe and the server's bind
            port = free_port(self.host)
            env = {"LOG_LEVEL": os.environ.get("TOXIPROXY_LOG_LEVEL", "warn")}
            if temp_log:  # a private log, deleted when the process is stopped
                fd, log_path = tempfile.mkstemp(prefix="toxiproxy-", suffix=".log")
                os.close(fd)
            proc = Child("toxiproxy-server", [binary, "-host", self.host, "-port", str(port)],
                         log_path=log_path, env=env, delete_log=temp_log)
            try:
                proc.start()
            except ProcessError as e:
                raise ToxiproxyError(str(e)) from None
            client = ToxiproxyClient(f"http://{self.host}:{port}", timeout_s=2.0)

            def answers() -> bool:
                try:
                    self.version = client.version()
                    return True
                except ToxiproxyError:
                    return False
            if wait_until(answers, self.start_timeout_s, child=proc):
                self.process, self.client, self.url = proc, ToxiproxyClient(client.url), client.url
                return self
            last_error = proc.tail(5, sep="\n") or f"exit code {proc.returncode}"
            proc.stop()
            if "in use" not in last_error:
                break
        self.stop()
        raise ToxiproxyError(f"toxiproxy-server ({binary}) did not start: {last_error.splitlines()[-1]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        self.client = None
        self.url = None

    def __enter__(self) -> "ToxiproxyServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
