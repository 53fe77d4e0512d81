"""Everything in front of a running ``MockHost``: Toxiproxy links (and mitmproxy where asked), the
toxic driver on the run clock, and the URLs to hand to the integration under test.

Wire order for a service with mitmproxy: ``integration → Toxiproxy link → mitmdump → mock`` (TCP
toxics nearest the client, so a reset or a cut is what the client itself sees; HTTP faults behind).
Callback links (``solver->integration``, ``chat->integration``) exist when the integration's callback
listener is known (``integration="host:port"``): give the solver/chat the link URL as the callback
address. Extra links (``integration->redis`` …) forward to any ``host:port``.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Iterable

from harness.journal import kinds
from harness.proxy.links import Links, cleanup_run, cleanup_stale, host_port
from harness.proxy.mitm import MitmProxy, MitmRoute
from harness.proxy.toxics import ToxicDriver
from harness.proxy.toxiproxy_server import ToxiproxyServer

if TYPE_CHECKING:
    from harness.host import MockHost

log = logging.getLogger("harness.proxy")
CALLBACK_SOURCES = ("solver", "chat")  # services that call the integration back


def service_link(service: str) -> str:
    return f"integration->{service}"


class ProxyStack:
    def __init__(self, host: "MockHost", *, mitm: Iterable[str] = (), upstreams: dict[str, str] | None = None,
                 integration: str | None = None, extra_links: dict[str, str] | None = None,
                 run_id: str | None = None, toxiproxy_url: str | None = None,
                 toxiproxy_binary: str | None = None, interval_s: float = 0.02):
        self.host = host
        self.upstreams = dict(upstreams or {})
        unknown = sorted((set(mitm) | set(self.upstreams)) - set(host.services))
        if unknown:
            raise ValueError(f"proxies: unknown service(s) {', '.join(unknown)} (have: {', '.join(host.services)})")
        self.mitm_services = [s for s in host.services if s in set(mitm) | set(self.upstreams)]
        self.integration = host_port(integration) if integration else None
        self.extra_links = {k: host_port(v) for k, v in (extra_links or {}).items()}
        self.server = ToxiproxyServer(toxiproxy_url, binary=toxiproxy_binary,
                                      log_path=os.path.join(host.run_dir, "toxiproxy.log"))
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

    async def start(self) -> dict[str, Any]:
        """Start everything (blocking calls briefly: run once at start-up). Returns the ready URLs."""
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> dict[str, Any]:
        host = self.host
        self.server.start()
        assert self.server.client is not None
        if not self.server.owned:  # a shared server: remove what killed runs left there
            stale = cleanup_stale(self.server.client)
            if stale:
                log.info("removed %d proxies of dead runs: %s", len(stale), ", ".join(stale))
                host.journal.write(kinds.STEP.event(step="stale_proxies_removed", proxies=stale))
        self.links = Links(self.server.client, self._run_id)
        direct = {name: self.upstreams.get(name, host.url(name)) for name in host.services}
        if self.mitm_services:
            routes = [MitmRoute(service_link(s), s, direct[s]) for s in self.mitm_services]
            self.mitm = MitmProxy(routes, host.url("control"), control_token=host.control_token,
                                  run_dir=host.run_dir, upstream_ca=self._upstream_ca(),
                                  client_cert=host.tls.cert_path if host.tls else None,
                                  hang_limit_s=host.ctx.hang_limit_s)
            self.mitm.start()
        urls: dict[str, Any] = {}
        links: dict[str, str] = {}
        for name in host.services:
            mitm_url = self.mitm.urls.get(service_link(name)) if self.mitm else None
            target = mitm_url or direct[name]
            link = self.links.add(service_link(name), target)
            scheme = "https" if host.tls else "http"  # mitmdump shows the mock's certificate to TLS clients
            urls[name] = links[link.name] = link.url(scheme)
            urls[f"{name}_direct"] = direct[name]
            if mitm_url:
                urls[f"{name}_mitm"] = mitm_url.replace("http://", f"{scheme}://", 1)
        if self.integration:
            for source in CALLBACK_SOURCES:
                if source in host.services:
                    link = self.links.add(f"{source}->integration", self.integration)
                    links[link.name] = link.url()
        for name, target in self.extra_links.items():
            link = self.links.add(name, target)
            links[link.name] = f"{link.listen}"
        self.driver = ToxicDriver(host.engine, self.links, host.journal.write, interval_s=self.interval_s)
        await self.driver.sync()
        self.driver.start()
        urls["links"] = links
        urls["toxiproxy"] = self.server.url
        urls["run_id"] = self.links.run_id
        self.urls = urls
        host.journal.write(kinds.STEP.event(step="proxies_started", run_id=self.links.run_id,
                                            toxiproxy=self.server.url, toxiproxy_version=self.server.version,
                                            links=links, mitm=self.mitm.urls if self.mitm else {}))
        return urls

    def _upstream_ca(self) -> str | None:
        """CA file mitmdump verifies upstreams with: the local CA for TLS mocks; plus the public roots
        when a live upstream is mixed in (mitmproxy uses only the given file when one is set)."""
        local = self.host.ctx.tls_ca
        if local is None or not self.upstreams:
            return local
        import certifi
        bundle = os.path.join(self.host.run_dir, "upstream-ca.pem")
        with open(bundle, "wb") as out:
            for path in (certifi.where(), local):
                with open(path, "rb") as f:
                    out.write(f.read().rstrip(b"\n") + b"\n")
        return bundle

    async def stop(self) -> None:
        """Remove our toxics and proxies, stop what we started. Safe to call twice / after a failed start."""
        if self.driver is not None:
            try:
                await self.driver.stop()
            except Exception as e:
                log.warning("toxic driver stop: %s", e)
            self.driver = None
        if self.links is not None:
            removed = self.links.remove_all()
            if self.server.client is not None:
                try:
                    removed += cleanup_run(self.server.client, self.links.run_id)
                except Exception:
                    pass
            self.links = None
        if self.mitm is not None:
            self.mitm.stop()
            self.mitm = None
        self.server.stop()
        if not self.host.journal_closed and self.urls:
            self.host.journal.write(kinds.STEP.event(step="proxies_stopped"))
        self.urls = {}


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, target = v.partition("=")
        if not sep or not name or not target:
            raise ValueError(f"--{what} {v!r}: expected NAME=TARGET")
        out[name.strip()] = target.strip()
    return out


async def start_for_serve(host: "MockHost", args: Any) -> tuple["ProxyStack", dict[str, Any]]:
    """``harness serve --proxies``: build the stack from the command line and start it.
    User errors (missing binary, bad option) come back as one-line ``CliError``s."""
    from harness.cli import CliError
    from harness.proxy.mitm import MitmError
    from harness.proxy.toxiproxy_client import ToxiproxyError
    from harness.proxy.toxiproxy_server import ToxiproxyNotFound

    try:
        choice = (args.mitm or "all").strip()
        mitm = (list(host.services) if choice == "all" else [] if choice == "none"
                else [s.strip() for s in choice.split(",") if s.strip()])
        stack = ProxyStack(host, mitm=mitm, upstreams=_pairs(args.upstream, "upstream"),
                           integration=args.integration, extra_links=_pairs(args.link, "link"),
                           run_id=args.run_id, toxiproxy_url=args.toxiproxy_url)
        return stack, await stack.start()
    except (ToxiproxyNotFound, ToxiproxyError, MitmError, ValueError) as e:
        raise CliError(str(e)) from None
