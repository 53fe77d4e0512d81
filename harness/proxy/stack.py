"""The one builder of the proxy chain in front of a running ``MockHost``: Toxiproxy links (and
mitmproxy where asked), the toxic driver on the run clock, and the URLs to hand to the integration
under test. ``harness serve --proxies`` and the scenario runner build it whole (``start()`` /
``stop()``); the pytest link fixtures open it empty and add links as tests ask for them (``open()``,
``start_driver()``, ``add_link()``, ``mitm_url()``, ``stop_driver()``, ``close()``).

Wire order for a service with mitmproxy: ``integration → Toxiproxy link → mitmdump → mock`` (TCP
toxics nearest the client, so a reset or a cut is what the client itself sees; HTTP faults behind).
mitmdump shows TLS clients the mock's own certificate and verifies upstreams with the local CA (plus
the public roots when a live upstream is mixed in). Callback links (``solver->integration``,
``chat->integration``) exist when the integration's callback listener is known
(``integration="host:port"``): give the solver/chat the link URL as the callback address. Extra links
(``integration->redis`` …) forward to any ``host:port``.

Options are plain values; errors are ``harness.proxy.errors.ProxyError`` (bad options:
``ProxyOptionError``, a ``ValueError``), one line each.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, Iterable
from urllib.parse import urlsplit

from harness.journal import kinds
from harness.proxy.errors import ProxyOptionError
from harness.proxy.mitm import MitmProxy, MitmRoute
from harness.proxy.toxics import ToxicDriver
from harness.proxy.toxiproxy_links import Link, Links, cleanup_run, cleanup_stale, host_port
from harness.proxy.toxiproxy_server import ToxiproxyServer
from mocks.registry import callback_sources

if TYPE_CHECKING:
    from harness.host import MockHost

log = logging.getLogger("harness.proxy")


def service_link(service: str) -> str:
    return f"integration->{service}"


def callback_link(source: str) -> str:
    return f"{source}->integration"


class ProxyStack:
    """``server``: a Toxiproxy server someone else started and stops (the pytest fixture's); by
    default the stack makes its own from ``toxiproxy_url`` / ``toxiproxy_binary`` and stops it."""

    def __init__(self, host: "MockHost", *, mitm: Iterable[str] = (), upstreams: dict[str, str] | None = None,
                 integration: str | None = None, extra_links: dict[str, str] | None = None,
                 mitm_links: Iterable[str] = (),
                 run_id: str | None = None, toxiproxy_url: str | None = None,
                 toxiproxy_binary: str | None = None, server: ToxiproxyServer | None = None,
                 mitm_dir: str | None = None, interval_s: float = 0.02):
        self.host = host
        self.upstreams = dict(upstreams or {})
        for service, url in self.upstreams.items():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ProxyOptionError(f"upstream {service}={url!r}: expected an http:// or https:// URL")
        unknown = sorted((set(mitm) | set(self.upstreams)) - set(host.services))
        if unknown:
            raise ProxyOptionError(f"proxies: unknown service(s) {', '.join(unknown)} "
                                   f"(have: {', '.join(host.services)})")
        self.mitm_services = [s for s in host.services if s in set(mitm) | set(self.upstreams)]
        self.integration = host_port(integration) if integration else None
        self.extra_links = {k: host_port(v) for k, v in (extra_links or {}).items()}
        self.mitm_links = [name for name in mitm_links if name in self.extra_links]  # extra links behind mitmdump
        self._own_server = server is None
        self.server = server or ToxiproxyServer(toxiproxy_url, binary=toxiproxy_binary,
                                                log_path=os.path.join(host.run_dir, "toxiproxy.log"))
        self.mitm_dir = mitm_dir or host.run_dir
        self._run_id = run_id
        self.interval_s = interval_s
        self.links: Links | None = None
        self.mitm: MitmProxy | None = None
        self.driver: ToxicDriver | None = None
        self.urls: dict[str, Any] = {}

    @property
    def run_id(self) -> str:
        assert self.links is not None
        return self.links.run_id

    # --- the parts (blocking calls: run them at start-up / from the test's thread) -------------------
    def open(self) -> list[str]:
        """Start (or reach) the server; on a shared one, remove what dead runs left there (returned)."""
        self.server.start()
        assert self.server.client is not None
        stale = [] if self.server.owned else cleanup_stale(self.server.client)
        if stale:
            log.info("removed %d proxies of dead runs: %s", len(stale), ", ".join(stale))
        self.links = Links(self.server.client, self._run_id)
        self.driver = ToxicDriver(self.host.engine, self.links, self.host.journal.write, interval_s=self.interval_s)
        return stale

    def direct(self, service: str) -> str:
        """Where the service itself answers: its mock, or the live upstream given for it."""
        return self.upstreams.get(service, self.host.url(service))

    def mitm_url(self, service: str) -> str:
        """mitmdump's route to ``service`` (mitmdump starts on first use, one route per mitm service:
        those given, or every service of the host when none was)."""
        url = self._mitmdump().urls.get(service_link(service))
        if url is None:
            raise ProxyOptionError(f"proxies: {service} is not behind mitmproxy "
                                   f"(mitm: {', '.join(self.mitm_services)})")
        return url

    def _mitmdump(self) -> MitmProxy:
        if self.mitm is None:
            host = self.host
            services = self.mitm_services or list(host.services)
            routes = [MitmRoute(service_link(s), s, self.direct(s), tag=s not in self.upstreams) for s in services]
            routes += [MitmRoute(name, None, f"http://{self.extra_links[name]}") for name in self.mitm_links]
            mitm = MitmProxy(routes, host.url("control"), control_token=host.control_token,
                             run_dir=self.mitm_dir, upstream_ca=self._upstream_ca(),
                             client_cert=host.tls.cert_path if host.tls else None,
                             hang_limit_s=host.ctx.hang_limit_s)
            mitm.start()
            self.mitm = mitm
        return self.mitm

    def add_link(self, name: str, target: str) -> Link:
        assert self.links is not None, "open() first"
        return self.links.add(name, target)

    def remove_link(self, name: str) -> None:
        assert self.links is not None, "open() first"
        self.links.remove(name)

    async def start_driver(self) -> None:
        """Apply the link rules now and follow them on the run clock (on the host's event loop)."""
        assert self.driver is not None, "open() first"
        await self.driver.sync()
        self.driver.start()

    async def stop_driver(self) -> None:
        if self.driver is not None:
            try:
                await self.driver.stop()
            except Exception as e:
                log.warning("toxic driver stop: %s", e)
            self.driver = None

    def close(self) -> None:
        """Remove our proxies (also those a failed call may have left) and stop mitmdump."""
        if self.links is not None:
            self.links.remove_all()
            if self.server.client is not None:
                try:
                    cleanup_run(self.server.client, self.links.run_id)
                except Exception:
                    pass
            self.links = None
        if self.mitm is not None:
            self.mitm.stop()
            self.mitm = None

    # --- the whole chain (serve, runner) -----------------------------------------------------------
    async def start(self) -> dict[str, Any]:
        """Start everything (blocking calls briefly: run once at start-up). Returns the ready URLs."""
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> dict[str, Any]:
        host = self.host
        stale = self.open()
        if stale:
            host.journal.write(kinds.STEP.event(step="stale_proxies_removed", proxies=stale))
        urls: dict[str, Any] = {}
        links: dict[str, str] = {}
        for name in host.services:
            # mitmdump shows the mock's certificate to TLS clients
            scheme = "https" if host.url(name).startswith("https:") else "http"
            mitm_url = self.mitm_url(name) if name in self.mitm_services else None
            link = self.add_link(service_link(name), mitm_url or self.direct(name))
            urls[name] = links[link.name] = link.url(scheme)
            urls[f"{name}_direct"] = self.direct(name)
            if mitm_url:
                urls[f"{name}_mitm"] = mitm_url.replace("http://", f"{scheme}://", 1)
        if self.integration:
            for source in callback_sources():
                if source in host.services:
                    link = self.add_link(callback_link(source), self.integration)
                    links[link.name] = link.url()
        for name, target in self.extra_links.items():
            if name in self.mitm_links:  # mitmdump sees its HTTP (no mocked service: generic action/params)
                target = host_port(self._mitmdump().urls[name])
            link = self.add_link(name, target)
            links[link.name] = f"{link.listen}"
        await self.start_driver()
        urls["links"] = links
        urls["toxiproxy"] = self.server.url
        urls["run_id"] = self.run_id
        self.urls = urls
        host.journal.write(kinds.STEP.event(step="proxies_started", run_id=self.run_id,
                                            toxiproxy=self.server.url, toxiproxy_version=self.server.version,
                                            links=links, mitm=self.mitm.urls if self.mitm else {}))
        return urls

    def _upstream_ca(self) -> str | None:
        """CA file mitmdump verifies upstreams with: the local CA for TLS mocks; plus the public roots
        when a live upstream is mixed in (mitmproxy uses only the given file when one is set)."""
        local = self.host.ctx.tls_ca
        if local is None or not self.upstreams:
            return local
        from mocks.base.tls import public_and_local_bundle
        return public_and_local_bundle(local, os.path.join(self.mitm_dir, "upstream-ca.pem"))

    async def stop(self) -> None:
        """Remove our toxics and proxies, stop what we started. Safe to call twice / after a failed start."""
        await self.stop_driver()
        await asyncio.to_thread(self.close)  # off the loop: mitmdump's addon sends its last events to it
        if self._own_server:
            self.server.stop()
        if not self.host.journal_closed and self.urls:
            self.host.journal.write(kinds.STEP.event(step="proxies_stopped"))
        self.urls = {}
