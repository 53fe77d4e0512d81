"""``harness serve``: the mocks and the control API in one process until Ctrl-C / SIGTERM.

When ready it prints exactly one JSON line to stdout (service URLs, ``control``, and ``tls_ca``
when serving HTTPS); everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from typing import Any

from harness import loops
from mocks.registry import SERVICES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="run seed for probabilistic rules (default 0)")
    p.add_argument("--journal", metavar="PATH", help="journal file (default: a new temp dir)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    for name in SERVICES:
        p.add_argument(f"--{name}-port", type=int, default=0, metavar="PORT", help=f"{name} mock port (0 = free)")
    p.add_argument("--control-port", type=int, default=0, metavar="PORT", help="control API port (0 = free)")
    p.add_argument("--services", help="comma-separated subset of services to start (default: all)")
    p.add_argument("--config", metavar="FILE", help="YAML/JSON file: {service: {config…}} for the mocks")
    p.add_argument("--rules", metavar="FILE", help="YAML/JSON file of fault rules to load at start")
    p.add_argument("--tls", action="store_true", help="serve the mocks over HTTPS with a local CA")
    p.add_argument("--control-token", default=os.environ.get("HARNESS_CONTROL_TOKEN"),
                   help="require this bearer token on the control API (env HARNESS_CONTROL_TOKEN)")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiply mock-side delays by this")
    g = p.add_argument_group("proxies (docs/proxies.md)")
    g.add_argument("--proxies", action="store_true",
                   help="put a Toxiproxy link (and mitmproxy, see --mitm) in front of every mock; the ready "
                        "line then gives the proxied URLs (<svc>_direct: the mock itself)")
    g.add_argument("--mitm", default="all", metavar="SERVICES",
                   help="with --proxies: services fronted by mitmproxy for HTTP-level link rules: all "
                        "(default), none, or a comma-separated list")
    g.add_argument("--upstream", action="append", default=[], metavar="SVC=URL",
                   help="live mode: the proxies of SVC forward to URL (a real service) instead of the mock")
    g.add_argument("--integration", metavar="HOST:PORT",
                   help="the integration's callback listener: adds solver->integration / chat->integration links")
    g.add_argument("--link", action="append", default=[], metavar="NAME=HOST:PORT",
                   help="an extra link, e.g. integration->redis=127.0.0.1:6379 (repeatable)")
    g.add_argument("--run-id", help="prefix of this run's Toxiproxy proxy names (default: a new one)")
    g.add_argument("--toxiproxy-url", default=os.environ.get("TOXIPROXY_URL"),
                   help="use this running Toxiproxy server instead of starting one (env TOXIPROXY_URL)")


def _load_file(path: str, what: str) -> Any:
    from harness.cli import CliError
    import yaml
    try:
        with open(path, "rb") as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise CliError(f"{path}: cannot read {what}: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise CliError(f"{path}{line}: invalid YAML: {getattr(e, 'problem', e)}") from None


def main(args: argparse.Namespace) -> int:
    from harness.cli import CliError
    from harness.faults.rules import RuleError, parse_rules

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    configs = _load_file(args.config, "config") if args.config else {}
    if configs is not None and not isinstance(configs, dict):
        raise CliError(f"{args.config}: expected a mapping of service name to config")
    configs = configs or {}
    rules = []
    if args.rules:
        try:
            rules = parse_rules(_load_file(args.rules, "rules"))
        except RuleError as e:
            raise CliError(f"{args.rules}: {e}") from None
    names = [s.strip() for s in args.services.split(",") if s.strip()] if args.services else None
    services = None if names is None else {n: configs.get(n, {}) for n in names}
    if services is None and configs:
        from mocks.registry import available
        services = {n: configs.get(n, {}) for n in available()}
    ports = {name: getattr(args, f"{name}_port") for name in SERVICES}
    try:
        return loops.run(_serve(args, services, ports, rules))
    except (ValueError, OSError) as e:
        raise CliError(str(e)) from None


async def _serve(args: argparse.Namespace, services: Any, ports: dict[str, int], rules: list) -> int:
    from harness.host import MockHost

    host = MockHost(seed=args.seed, journal_path=args.journal, services=services, ports=ports,
                    host=args.host, control_port=args.control_port, tls=args.tls,
                    control_token=args.control_token, time_scale=args.time_scale)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stack = None
    try:
        urls = await host.start()
        if rules:
            host.engine.add(rules)
        ready = dict(urls)
        if args.proxies:
            stack, proxied = await _start_proxies(host, args)
            ready.update(proxied)
        ready["journal"] = host.journal.path
        if host.ctx.tls_ca:
            ready["tls_ca"] = host.ctx.tls_ca
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        logging.getLogger("harness").info("serving %s", ", ".join(f"{k}={v}" for k, v in urls.items()))
        await stop.wait()
        logging.getLogger("harness").info("shutting down")
    finally:
        if stack is not None:
            await stack.stop()
        await host.stop()
    return 0


def _pairs(values: list[str], what: str) -> dict[str, str]:
    from harness.cli import CliError
    out = {}
    for v in values:
        name, sep, target = v.partition("=")
        if not sep or not name or not target:
            raise CliError(f"--{what} {v!r}: expected NAME=TARGET")
        out[name.strip()] = target.strip()
    return out


async def _start_proxies(host: Any, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """``--proxies``: build the chain the command line asks for and start it. Its errors (missing
    binary, bad option) become one-line ``CliError``s."""
    from harness.cli import CliError
    from harness.proxy.errors import ProxyError
    from harness.proxy.stack import ProxyStack

    choice = (args.mitm or "all").strip()
    mitm = (list(host.services) if choice == "all" else [] if choice == "none"
            else [s.strip() for s in choice.split(",") if s.strip()])
    try:
        stack = ProxyStack(host, mitm=mitm, upstreams=_pairs(args.upstream, "upstream"),
                           integration=args.integration, extra_links=_pairs(args.link, "link"),
                           run_id=args.run_id, toxiproxy_url=args.toxiproxy_url)
        return stack, await stack.start()
    except ProxyError as e:
        raise CliError(str(e)) from None
