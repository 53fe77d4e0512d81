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
from harness.commands import args as types
from mocks.registry import SERVICES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=types.seed, default=0, help="run seed for probabilistic rules (default 0)")
    p.add_argument("--journal", metavar="PATH", help="journal file (default: a new temp dir)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--control-host", metavar="HOST",
                   help="address of the control API (default: --host); not loopback needs a token")
    p.add_argument("--insecure-no-token", action="store_true",
                   help="allow the control API on a non-loopback address without a token (anyone who can "
                        "reach it can add faults, write the journal and point webhooks anywhere)")
    for name in SERVICES:
        p.add_argument(f"--{name}-port", type=types.port, default=0, metavar="PORT",
                       help=f"{name} mock port (0 = free)")
    p.add_argument("--control-port", type=types.port, default=0, metavar="PORT", help="control API port (0 = free)")
    p.add_argument("--services", help="comma-separated subset of services to start (default: all)")
    p.add_argument("--config", metavar="FILE", help="YAML/JSON file: {service: {config…}} for the mocks")
    p.add_argument("--rules", metavar="FILE", help="YAML/JSON file of fault rules to load at start")
    p.add_argument("--tls", action="store_true", help="serve the mocks over HTTPS with a local CA")
    p.add_argument("--control-token", default=os.environ.get("HARNESS_CONTROL_TOKEN"),
                   help="require this bearer token on the control API (env HARNESS_CONTROL_TOKEN)")
    p.add_argument("--time-scale", type=types.time_scale, default=1.0, help="multiply mock-side delays by this")
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


def _load_file(path: str) -> tuple[Any, Any]:
    """YAML/JSON with the scenario loader's limits and line numbers: (data, positions)."""
    from harness.cli import CliError
    from harness.scenario.yamlpos import ScenarioError, load_yaml
    try:
        return load_yaml(path)
    except ScenarioError as e:
        raise CliError(str(e)) from None


def _load_configs(path: str) -> dict[str, Any]:
    """``--config``: {service: {key: value}}, each checked as the mock will (file:line: field)."""
    from harness.cli import CliError
    from harness.scenario.checks import check_config
    from harness.scenario.yamlpos import ScenarioError, where
    from mocks.registry import available
    configs, positions = _load_file(path)
    if configs is None:
        return {}
    if not isinstance(configs, dict):
        raise CliError(f"{path}:1: expected a mapping of service name to config")
    known = available()
    for name, config in configs.items():
        at = where(positions, (name,), path)
        if name not in known:
            raise CliError(f"{at}: {name}: unknown service (known: {', '.join(known)})")
        if not isinstance(config, dict):
            raise CliError(f"{at}: {name}: expected a mapping of config keys")
        try:
            check_config(known[name], config, (name,), positions, path)
        except ScenarioError as e:
            raise CliError(str(e)) from None
    return configs


def check_exposure(args: argparse.Namespace) -> None:
    """The control API off loopback needs a token (or ``--insecure-no-token``, with a warning);
    mocks off loopback are announced. Warnings are one line each on stderr."""
    from harness.cli import CliError
    from harness.host import is_loopback
    control_host = args.control_host or args.host
    if not is_loopback(control_host) and not args.control_token:
        if not args.insecure_no_token:
            raise CliError(f"--host/--control-host {control_host}: the control API would be open to the network "
                           "without a token; give --control-token (or HARNESS_CONTROL_TOKEN), keep it on "
                           "loopback with --control-host 127.0.0.1, or pass --insecure-no-token")
        print(f"harness serve: WARNING: the control API on {control_host} has no token: anyone who can reach it "
              "can add faults, forge journal events and send webhooks anywhere", file=sys.stderr)
    if not is_loopback(args.host):
        print(f"harness serve: note: the mocks listen on {args.host}: anyone who can reach it can call them "
              "with their built-in test credentials", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    from harness.cli import CliError
    from harness.faults.rules import RuleError, parse_rules

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    check_exposure(args)
    configs = _load_configs(args.config) if args.config else {}
    rules = []
    if args.rules:
        try:
            rules = parse_rules(_load_file(args.rules)[0])
        except RuleError as e:
            raise CliError(f"{args.rules}: {e}") from None
    if args.proxies:
        from harness.commands import preflight
        from harness.supervisor import cgroup_notice
        preflight.proxies(args.toxiproxy_url, args.mitm.strip() != "none")
        notice = cgroup_notice()
        if notice:
            print(f"note: {notice}", file=sys.stderr)
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
                    control_token=args.control_token, time_scale=args.time_scale,
                    control_host=args.control_host, insecure_no_token=args.insecure_no_token)
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
