"""The pytest link fixtures' worker state: Toxiproxy links (optionally through mitmproxy) on the one
proxy-chain builder (``harness.proxy.stack.ProxyStack``, opened empty, links added as tests ask).

One ``WorkerLinks`` per pytest worker: one Toxiproxy server (or the shared one at ``TOXIPROXY_URL``),
proxies named ``<run id>.<from>-<to>`` with a run id unique per worker and process (so workers sharing
a server never collide), a ``ToxicDriver`` on the host's event loop so link rules
(``match.link`` + ``effect.toxic`` / ``link_down``) work exactly as in scenarios, and — only when a test
asks for ``mitm=True`` — one mitmdump with a route per mock, for HTTP-level faults (``drop_response``,
``duplicate_request``) decided by the same rule engine. Links live as long as the worker; between
tests they lose every toxic and come back up (part of the per-test reset).
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, Iterator

from harness.journal import kinds
from harness.proxy.stack import ProxyStack
from harness.proxy.toxics import TOXIC_ATTRIBUTES
from harness.proxy.toxiproxy_client import ToxiproxyError
from harness.proxy.toxiproxy_links import Link, host_port
from harness.testing.worker import unique_name

if TYPE_CHECKING:
    from harness.proxy.toxiproxy_server import ToxiproxyServer
    from harness.testing.host import WorkerHost

RULE_TOXIC_PREFIX = "rule."  # names the ToxicDriver gives the toxics of rules


class LinkHandle:
    """One link: ``url`` to give the client, direct toxics, up/down. Rules with ``match.link`` work too."""

    def __init__(self, owner: "WorkerLinks", link: Link, via_mitm: bool):
        self._owner = owner
        self.link = link
        self.via_mitm = via_mitm
        self._toxics: dict[str, str] = {}   # our toxic name → type
        self._down = False
        self._n = 0

    def __repr__(self) -> str:
        return f"<LinkHandle {self.name} {self.listen} -> {self.upstream}{' (mitm)' if self.via_mitm else ''}>"

    name = property(lambda self: self.link.name)
    proxy = property(lambda self: self.link.proxy, doc="the Toxiproxy proxy name (unique per worker)")
    listen = property(lambda self: self.link.listen, doc="127.0.0.1:PORT the client connects to")
    upstream = property(lambda self: self.link.upstream)
    port = property(lambda self: self.link.port)
    host_port = listen

    @property
    def url(self) -> str:
        return self.link.url("http")

    def url_with(self, scheme: str) -> str:
        return self.link.url(scheme)

    @property
    def _client(self) -> Any:
        return self._owner.client

    def _record(self, kind: kinds.Kind, **fields: Any) -> None:
        self._owner.wh.host.journal.write(kind.event(link=self.name, rule=None, **fields))

    # --- toxics ----------------------------------------------------------------------------
    def add_toxic(self, type: str, *, stream: str = "downstream", toxicity: float = 1.0,
                  name: str | None = None, **attributes: Any) -> str:
        """Add a Toxiproxy toxic now (``latency`` ms, ``bandwidth`` KB/s, ``timeout``, ``reset_peer``,
        ``slow_close``, ``slicer``, ``limit_data``); returns its name. Removed at the end of the test."""
        allowed = TOXIC_ATTRIBUTES.get(type)
        if allowed is not None and set(attributes) - allowed:
            raise ValueError(f"{type} has no attribute(s) {', '.join(sorted(set(attributes) - allowed))} "
                             f"(has: {', '.join(sorted(allowed))})")
        self._n += 1
        tname = name or f"t{self._n}.{type}"
        if tname.startswith(RULE_TOXIC_PREFIX):
            raise ValueError(f"toxic names starting with {RULE_TOXIC_PREFIX!r} belong to rules")
        self._client.add_toxic(self.proxy, tname, type, stream=stream, toxicity=toxicity, attributes=attributes)
        self._toxics[tname] = type
        self._record(kinds.TOXIC, op="added", toxic=type, name=tname, stream=stream, toxicity=toxicity,
                     attributes=attributes)
        return tname

    def remove_toxic(self, name: str) -> None:
        try:
            self._client.remove_toxic(self.proxy, name)
        except ToxiproxyError as e:
            if e.status != 404:
                raise
        kind = self._toxics.pop(name, None)
        self._record(kinds.TOXIC, op="removed", toxic=kind, name=name)

    def toxics(self) -> dict[str, dict[str, Any]]:
        """Every toxic on the proxy now (ours and those of active link rules)."""
        return self._client.toxics(self.proxy)

    @contextlib.contextmanager
    def toxic(self, type: str, **kw: Any) -> Iterator[str]:
        """``with link.toxic("latency", latency=3000):`` — the toxic only inside the block."""
        tname = self.add_toxic(type, **kw)
        try:
            yield tname
        finally:
            self.remove_toxic(tname)

    # --- up / down -------------------------------------------------------------------------
    def down(self) -> None:
        """Disable the proxy: its port refuses connections, open ones are closed."""
        self._client.set_enabled(self.proxy, False)
        self._down = True
        self._record(kinds.LINK, op="down")

    def up(self) -> None:
        self._client.set_enabled(self.proxy, True)
        self._down = False
        self._record(kinds.LINK, op="up")

    @contextlib.contextmanager
    def cut(self) -> Iterator[None]:
        """``with link.cut():`` — down inside the block, up after."""
        self.down()
        try:
            yield
        finally:
            self.up()

    def _reset(self) -> None:
        for tname in list(self._toxics):
            self.remove_toxic(tname)
        if self._down:
            self.up()
        self._n = 0


class WorkerLinks:
    def __init__(self, wh: "WorkerHost", server: "ToxiproxyServer", run_id: str | None = None):
        self.wh = wh
        self.server = server
        # a shared server (TOXIPROXY_URL): open() removes what killed runs left there
        self.stack = ProxyStack(wh.host, server=server, run_id=run_id or unique_name("pytest"),
                                mitm_dir=os.path.join(wh.run_dir, "mitm"))
        self.stack.open()
        assert server.client is not None and self.stack.links is not None and self.stack.driver is not None
        self.client = server.client
        self.links = self.stack.links
        self.driver = self.stack.driver
        self.handles: dict[str, LinkHandle] = {}
        wh.call(self.stack.start_driver)
        wh.reset_hooks.append(self.reset)
        wh.links = self  # type: ignore[attr-defined]  # rules added through the fixtures sync links

    @property
    def run_id(self) -> str:
        return self.links.run_id

    @property
    def mitm(self) -> Any:
        """The worker's mitmdump (``MitmProxy``) once a test asked for ``mitm=True``."""
        return self.stack.mitm

    def get(self, name: str, upstream: str | None = None, *, mitm: bool = False) -> LinkHandle:
        """The link ``name`` (``integration->captcha`` …), created on first use. ``upstream`` (host:port or
        URL) defaults to the mock the name points at; ``mitm=True`` puts mitmproxy behind Toxiproxy."""
        src, sep, dst = name.partition("->")
        if not sep:
            raise ValueError(f"link {name!r}: expected <from>-><to>, e.g. integration->captcha")
        if mitm:
            if src != "integration" or dst not in self.wh.services:
                raise ValueError(f"link {name!r}: mitm=True needs integration-><mock> "
                                 f"({', '.join(self.wh.services)})")
            if upstream is not None:
                raise ValueError(f"link {name!r}: with mitm=True the upstream is the {dst} mock")
            target = self.stack.mitm_url(dst)  # from the main thread: it dies with us (PR_SET_PDEATHSIG)
        elif upstream is not None:
            target = upstream
        elif dst in self.wh.services:
            target = self.stack.direct(dst)
        else:
            raise ValueError(f"link {name!r}: give upstream= (host:port or URL) — {dst!r} is not a mock "
                             f"(have: {', '.join(self.wh.services)})")
        existing = self.handles.get(name)
        if existing is not None:
            if existing.upstream == host_port(target) and existing.via_mitm == mitm:
                return existing
            self.remove(name)
        handle = LinkHandle(self, self.stack.add_link(name, target), mitm)
        self.handles[name] = handle
        self.sync()  # link rules already added apply to the new link
        return handle

    def remove(self, name: str) -> None:
        self.handles.pop(name, None)
        self.stack.remove_link(name)
        self.sync()

    def sync(self) -> None:
        """Apply the engine's link rules now (the driver also polls every 20 ms)."""
        self.wh.call(self.driver.sync)

    def reset(self) -> None:
        if self.driver.applied or self.driver.down or self.driver.failed:
            self.sync()  # the engine was just cleared: rule toxics go, links held down come up
        for handle in self.handles.values():
            handle._reset()

    def stop(self) -> None:
        try:
            self.wh.call(self.stack.stop_driver, timeout=15)
        except Exception:
            pass
        self.stack.close()
        if self.reset in self.wh.reset_hooks:
            self.wh.reset_hooks.remove(self.reset)
        if getattr(self.wh, "links", None) is self:
            self.wh.links = None  # type: ignore[attr-defined]
