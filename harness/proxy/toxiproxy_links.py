"""The Toxiproxy proxies of a run: one per link (a wire between two parties), named uniquely per run.

A link is named ``<from>-><to>`` (``integration->solver``, ``solver->integration``,
``integration->redis`` …); rules select it with ``match.link``. Its Toxiproxy proxy is named
``<run id>.<from>-<to>`` so that parallel runs and xdist workers sharing one server never collide, and
``cleanup_run(client, run_id)`` removes every proxy a dead run left behind; ``cleanup_stale(client)``
removes those of runs whose process is gone (a SIGKILLed run cannot clean up after itself).
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from typing import Callable, Iterator
from urllib.parse import urlsplit

from harness.ports import free_port
from harness.proxy.errors import ProxyOptionError
from harness.proxy.toxiproxy_client import ProxyInfo, ToxiproxyClient, ToxiproxyError

LINK_NAME = re.compile(r"^[A-Za-z0-9_.]+(?:->[A-Za-z0-9_.]+)?$")
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def new_run_id() -> str:
    return f"run{os.getpid()}-{secrets.token_hex(3)}"


def proxy_name(run_id: str, link: str) -> str:
    if not RUN_ID.match(run_id):
        raise ProxyOptionError(f"run id {run_id!r}: use letters, digits, '-' and '_' (at most 64)")
    if not LINK_NAME.match(link):
        raise ProxyOptionError(f"link {link!r}: expected <from>-><to>, e.g. integration->solver")
    return f"{run_id}.{link.replace('->', '-')}"


def host_port(target: str) -> str:
    """``http://127.0.0.1:8000/x`` or ``127.0.0.1:8000`` → ``127.0.0.1:8000`` (default ports by scheme)."""
    if "://" not in target:
        if not re.match(r"^\[?[A-Za-z0-9_.:-]+\]?:\d+$", target):
            raise ProxyOptionError(f"upstream {target!r}: expected host:port or a URL")
        return target
    parts = urlsplit(target)
    if not parts.hostname:
        raise ProxyOptionError(f"upstream {target!r}: no host")
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if port is None:
        raise ProxyOptionError(f"upstream {target!r}: no port")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


@dataclass(frozen=True)
class Link:
    name: str         # integration->solver
    proxy: str        # <run id>.integration-solver
    listen: str       # 127.0.0.1:PORT (what the client connects to)
    upstream: str     # host:port

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://{self.listen}"


class Links:
    """The links of one run on one Toxiproxy server."""

    def __init__(self, client: ToxiproxyClient, run_id: str | None = None, listen_host: str = "127.0.0.1"):
        self.client = client
        self.run_id = run_id or new_run_id()
        proxy_name(self.run_id, "a->b")  # validate now
        self.listen_host = listen_host
        self._links: dict[str, Link] = {}

    def add(self, name: str, upstream: str, listen_port: int = 0) -> Link:
        if name in self._links:
            raise ProxyOptionError(f"link {name!r} already exists in run {self.run_id}")
        pname = proxy_name(self.run_id, name)
        if any(link.proxy == pname for link in self._links.values()):
            raise ProxyOptionError(f"link {name!r} would reuse proxy name {pname!r}")
        info: ProxyInfo = self._create(pname, host_port(upstream), listen_port)
        link = Link(name, info.name, info.listen, info.upstream)
        self._links[name] = link
        return link

    def _create(self, pname: str, upstream: str, listen_port: int) -> ProxyInfo:
        """Port 0 means: pick one outside the kernel's ephemeral range (a disabled link gives its port
        back; an ephemeral one could be taken as a client's source port before the link comes back)."""
        if listen_port:
            return self.client.create(pname, upstream, f"{self.listen_host}:{listen_port}")
        for _ in range(4):
            try:
                return self.client.create(pname, upstream, f"{self.listen_host}:{free_port(self.listen_host)}")
            except ToxiproxyError as e:  # another worker bound it between pick and create
                if "in use" not in str(e):
                    raise
        return self.client.create(pname, upstream, f"{self.listen_host}:{free_port(self.listen_host)}")

    def remove(self, name: str) -> None:
        link = self._links.pop(name)
        try:
            self.client.delete(link.proxy)
        except ToxiproxyError as e:
            if e.status != 404:
                raise

    def remove_all(self) -> list[str]:
        removed = []
        for name in list(self._links):
            try:
                self.remove(name)
                removed.append(name)
            except ToxiproxyError:
                pass  # server gone: its proxies are gone too
        return removed

    def get(self, name: str) -> Link:
        return self._links[name]

    def __contains__(self, name: object) -> bool:
        return name in self._links

    def __iter__(self) -> Iterator[Link]:
        return iter(list(self._links.values()))

    def names(self) -> list[str]:
        return list(self._links)


def _delete_where(client: ToxiproxyClient, doomed: Callable[[str], bool]) -> list[str]:
    removed = []
    for name in client.proxies():
        if doomed(name):
            try:
                client.delete(name)
                removed.append(name)
            except ToxiproxyError as e:
                if e.status != 404:
                    raise
    return sorted(removed)


def cleanup_run(client: ToxiproxyClient, run_id: str) -> list[str]:
    """Delete every proxy of run ``run_id`` (e.g. left by a killed run on a shared server)."""
    return _delete_where(client, lambda name: name.startswith(f"{run_id}."))


# run ids that carry their process id: new_run_id() (runs, serve) and harness.testing's unique_name("pytest")
_PID_RUN = re.compile(r"^(?:run(\d+)-[0-9a-f]{6}|pytest-[A-Za-z0-9_]+-(\d+)-[0-9a-f]{4})\.")
_LOCAL = ("127.0.0.1", "localhost", "::1", "[::1]")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True


def cleanup_stale(client: ToxiproxyClient) -> list[str]:
    """Delete proxies left by runs whose process no longer exists: names made by ``new_run_id``
    (``run<pid>-<hex>.…``) or the pytest plugin (``pytest-<worker>-<pid>-<hex>.…``) whose pid is dead. Only on a server on this machine (a pid means nothing
    elsewhere); a reused pid keeps its proxies (never deletes a live run's)."""
    if client.host not in _LOCAL:
        return []

    def dead_owner(name: str) -> bool:
        m = _PID_RUN.match(name)
        pid = int(m.group(1) or m.group(2)) if m else None
        return pid is not None and pid != os.getpid() and not _process_alive(pid)
    return _delete_where(client, dead_owner)
