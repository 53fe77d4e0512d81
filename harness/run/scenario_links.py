"""The scenario's ``links:`` on the proxy chain (Toxiproxy, mitmproxy where asked), and what the
timeline does to them. ``cut_link`` is a ``link_down`` rule, so cuts, toxics and their windows all go
through the one rule engine and its toxic driver."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from harness.journal import kinds
from harness.proxy.stack import ProxyStack, callback_link, service_link
from harness.scenario.model import Link
from mocks.registry import callback_sources

if TYPE_CHECKING:
    from harness.faults import RuleEngine
    from harness.host import MockHost


class LinkError(RuntimeError):
    """The scenario's links cannot be set up or the timeline names one it does not declare: one line."""


class LinkSet:
    def __init__(self, engine: "RuleEngine", stack: ProxyStack):
        self.engine, self.stack = engine, stack

    def _check(self, name: str) -> None:
        if self.stack.links is None or name not in self.stack.links:
            raise LinkError(f"timeline names link {name!r}, which the scenario does not declare")

    async def cut(self, name: str) -> None:
        self._check(name)
        self.engine.add({"id": f"cut.{name.replace('->', '-')}", "match": {"link": name},
                         "effect": {"link_down": True}})
        await self.stack.driver.sync()

    async def restore(self, name: str) -> None:
        self._check(name)
        self.engine.remove(f"cut.{name.replace('->', '-')}")
        await self.stack.driver.sync()


async def start_links(host: "MockHost", ctx: dict[str, Any], links: list[Link],
                      exits: contextlib.AsyncExitStack) -> LinkSet:
    """Start the chain for ``links`` (stopped by ``exits``) and point ``ctx`` at it: each linked
    service's ``url``/``host``/``port``, the target's ``callback_url[_<source>]``, extra upstreams'
    ``host``/``port`` (and ``url`` for redis). Errors: ``LinkError``, ``harness.proxy.errors.ProxyError``."""
    services = set(host.services)
    mitm, extra, callbacks, mitm_extra = [], {}, False, []
    for link in links:
        src, dst = link.name.split("->")
        if src == "integration" and dst in services:
            if link.mitm:
                mitm.append(dst)
        elif dst == "integration" and src in services:
            callbacks = True
        elif src == "integration":
            upstream = link.upstream or (f"127.0.0.1:{ctx[dst]['port']}" if dst in ctx else None)
            if upstream is None:
                raise LinkError(f"links: {link.name}: give upstream (host:port) for {dst!r}")
            extra[link.name] = upstream
            mitm_extra += [link.name] if link.mitm else []
        else:
            raise LinkError(f"links: {link.name}: one end must be the integration and the other a service "
                            f"of this scenario ({', '.join(sorted(services))}) or an upstream")
    target = f"127.0.0.1:{ctx['target']['port']}" if callbacks else None
    stack = ProxyStack(host, mitm=mitm, integration=target, extra_links=extra, mitm_links=mitm_extra)
    urls = await stack.start()
    exits.push_async_callback(stack.stop)
    declared = {link.name for link in links}
    for service in services:
        if service_link(service) in declared:
            url = urls[service]
            ctx[service].update(url=url, host="127.0.0.1", port=int(url.rsplit(":", 1)[1]))
    for source in callback_sources():
        name = callback_link(source)
        if name in declared:
            ctx["target"][f"callback_url_{source}"] = urls["links"][name]
            ctx["target"].setdefault("callback_url", urls["links"][name])
    for name in extra:
        dst = name.split("->")[1]
        listen = urls["links"][name]
        address, port = listen.rsplit(":", 1)
        entry = ctx.setdefault(dst, {})
        entry.update(host=address, port=int(port))
        if dst == "redis":
            entry["url"] = f"redis://{listen}/0"
    host.journal.write(kinds.STEP.event(step="links_ready", run_id=stack.run_id, links=urls["links"]))
    return LinkSet(host.engine, stack)
