"""The scenario's ``links:`` as a real proxy stack (Toxiproxy, mitmproxy where asked), and what the
timeline does to them. ``cut_link`` is a ``link_down`` rule, so cuts, toxics and their windows all go
through the one rule engine and its toxic driver."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from harness.journal import kinds
from harness.scenario.model import Link

if TYPE_CHECKING:
    from harness.run.runner import Runner


class LinkSet:
    def __init__(self, runner: "Runner", stack: Any):
        self.runner, self.stack = runner, stack

    def _check(self, name: str) -> None:
        if self.stack.links is None or name not in self.stack.links:
            from harness.run.runner import RunError
            raise RunError(f"timeline names link {name!r}, which the scenario does not declare")

    async def cut(self, name: str) -> None:
        self._check(name)
        self.runner.host.engine.add({"id": f"cut.{name.replace('->', '-')}", "match": {"link": name},
                                     "effect": {"link_down": True}})
        await self.stack.driver.sync()

    async def restore(self, name: str) -> None:
        self._check(name)
        self.runner.host.engine.remove(f"cut.{name.replace('->', '-')}")
        await self.stack.driver.sync()


async def start_links(runner: "Runner", links: list[Link], exits: contextlib.AsyncExitStack) -> LinkSet:
    from harness.proxy.stack import ProxyStack
    from harness.proxy.toxiproxy_server import ToxiproxyNotFound
    from harness.run.runner import RunError

    services = set(runner.host.services)
    mitm, extra, callbacks = [], {}, False
    for link in links:
        src, dst = link.name.split("->")
        if src == "integration" and dst in services:
            if link.mitm:
                mitm.append(dst)
        elif dst == "integration" and src in services:
            callbacks = True
        elif src == "integration":
            upstream = link.upstream or (f"127.0.0.1:{runner.ctx[dst]['port']}" if dst in runner.ctx else None)
            if upstream is None:
                raise RunError(f"links: {link.name}: give upstream (host:port) for {dst!r}")
            extra[link.name] = upstream
        else:
            raise RunError(f"links: {link.name}: one end must be the integration and the other a service "
                           f"of this scenario ({', '.join(sorted(services))}) or an upstream")
    target = f"127.0.0.1:{runner.ctx['target']['port']}" if callbacks else None
    stack = ProxyStack(runner.host, mitm=mitm, integration=target, extra_links=extra)
    try:
        urls = await stack.start()
    except ToxiproxyNotFound as e:
        raise RunError(str(e)) from None
    exits.push_async_callback(stack.stop)
    declared = {link.name for link in links}
    for service in services:
        if f"integration->{service}" in declared:
            url = urls[service]
            runner.ctx[service].update(url=url, host="127.0.0.1", port=int(url.rsplit(":", 1)[1]))
    for source in ("solver", "chat"):
        name = f"{source}->integration"
        if name in declared:
            runner.ctx["target"][f"callback_url_{source}"] = urls["links"][name]
            runner.ctx["target"].setdefault("callback_url", urls["links"][name])
    for name in extra:
        dst = name.split("->")[1]
        listen = urls["links"][name]
        host, port = listen.rsplit(":", 1)
        entry = runner.ctx.setdefault(dst, {})
        entry.update(host=host, port=int(port))
        if dst == "redis":
            entry["url"] = f"redis://{listen}/0"
    runner.record(kinds.STEP.event(step="links_ready", run_id=stack.run_id, links=urls["links"]))
    return LinkSet(runner, stack)
