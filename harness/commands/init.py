"""``harness init [DIR] --service SVC``: a starter in your project — a target definition
(``scenarios/_targets/app.yaml``: how to start your app and which mock it talks to), three scenarios
(baseline, outage, slow service) and a ``conftest.py`` so ``pytest -n 2`` runs them as tests.
Existing files are kept unless ``--force``; every file written is printed. The scenarios use only
the generic fault effects (an HTTP status, a delay) and invariants, so they fit any service; edit the
traffic and the expectations to what your app must do."""

from __future__ import annotations

import argparse
import os

from harness.cli import CliError

TARGET = """\
# How the harness starts your app for each run (harness init). A relative cwd is relative to this file.
services:
  {svc}: {{}}
target:
  command: {command}
  cwd: ../..
  env:
    PORT: "${{target.port}}"   # listen here
    {env}_URL: "${{{svc}.url}}"   # the {svc} mock (or the link in front of it)
    {env}_HOST_PORT: "${{{svc}.host}}:${{{svc}.port}}"
  ready: {{path: {ready}, timeout: 20s}}
"""

FLOW = """\
traffic:
  - name: use
    count: {count}
    concurrency: 2
    rate: 5             # requests/s: the run lasts a few seconds, through the faults' windows
    timeout: 10s
    request: {{method: {method}, path: {path}}}
"""

SCENARIOS = {
    "baseline": """\
name: {svc}-baseline
description: >
  No faults. Every request to your app succeeds, with few {svc} calls per request.
tags: [starter, {svc}]
extends: _targets/app.yaml
{flow}expect:
  - all_requests_succeeded: {{flow: use}}
  - calls_per_action_bounded: {{service: {svc}, flow: use, max_calls: 3}}
""",
    "outage": """\
name: {svc}-outage
description: >
  The {svc} service answers 503 for the first two seconds. Your app must still answer (adjust the
  expectation to what it should do: degrade, fail open, or refuse) and must not hammer the service
  with retries.
tags: [starter, {svc}, outage]
extends: _targets/app.yaml
{flow}timeline:
  - at: 0s
    add_rules:
      - id: outage
        match: {{service: {svc}}}
        effect: {{status: 503}}
        schedule: {{window: {{start: 0s, end: 2s}}}}
expect:
  - all_requests_succeeded: {{flow: use, status: [200, 201, 202, 204, 503]}}
  - calls_per_action_bounded: {{service: {svc}, flow: use, max_calls: 4}}
""",
    "slow": """\
name: {svc}-slow
description: >
  Half of the {svc} answers take 3 s. Your app's own timeout must keep it answering in time.
tags: [starter, {svc}, latency]
extends: _targets/app.yaml
{flow}timeline:
  - at: 0s
    add_rules:
      - id: slow
        match: {{service: {svc}}}
        effect: {{delay_ms: 3000}}
        schedule: {{probability: 0.5}}
expect:
  - latency_percentile: {{flow: use, p: 95, max: 5s}}
""",
}

CONFTEST = '''\
"""chaos-harness starter (harness init): `pytest -n 2` runs the scenarios in scenarios/ as tests
(one per file; reports under the pytest basetemp), next to your own tests, which can use the
`{svc}_mock`, `harness`, `link` and `run_scenario` fixtures (docs: pytest.md)."""

import pytest


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """Collect scenarios/ too when pytest walks this project (`pytest`, `pytest -n 2`)."""
    if not config.getoption("harness_scenarios"):
        config.option.harness_scenarios = [str(config.rootpath / "scenarios")]


@pytest.fixture(scope="session")
def harness_services():
    """The mocks your fixture tests get, with their start config."""
    return {{"{svc}": {{}}}}
'''


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mocks.registry import SERVICES
    p.add_argument("directory", nargs="?", default=".", metavar="DIR", help="your project (default: here)")
    p.add_argument("--service", choices=sorted(SERVICES), help="the service your app calls")
    p.add_argument("--profile", nargs="?", const="profile.yaml", metavar="PATH",
                   help="instead: write a commented starter target profile to PATH (default profile.yaml)")
    p.add_argument("--command", default="python app.py", help="how to start your app (default: python app.py)")
    p.add_argument("--path", default="/", help="the request the scenarios send your app (default: /)")
    p.add_argument("--method", default="GET", choices=["GET", "POST", "PUT", "PATCH", "DELETE"])
    p.add_argument("--ready", default="/health", help="your app's readiness path (default: /health)")
    p.add_argument("--count", type=int, default=10, help="requests per scenario (default: 10)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")


def files(args: argparse.Namespace) -> dict[str, str]:
    svc = args.service
    fill = {"svc": svc, "env": svc.upper().replace("-", "_"), "command": args.command, "ready": args.ready,
            "flow": FLOW.format(count=args.count, method=args.method, path=args.path)}
    out = {os.path.join("scenarios", "_targets", "app.yaml"): TARGET.format(**fill)}
    for kind, text in SCENARIOS.items():
        out[os.path.join("scenarios", f"{svc}-{kind}.yaml")] = text.format(**fill)
    out["conftest.py"] = CONFTEST.format(**fill)
    return out


def main(args: argparse.Namespace) -> int:
    if args.profile is not None:
        from harness.commands import init_profile
        return init_profile.main(args)
    if args.service is None:
        raise CliError("give --service SVC (a starter project) or --profile [PATH] (a starter target profile)")
    if not os.path.isdir(args.directory):
        raise CliError(f"{args.directory}: no such directory")
    if args.count < 1:
        raise CliError("--count: must be at least 1")
    written = kept = 0
    for rel, text in files(args).items():
        path = os.path.join(args.directory, rel)
        if os.path.exists(path) and not args.force:
            print(f"kept     {path} (exists; --force overwrites)")
            kept += 1
            continue
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote    {path}")
        written += 1
    print(f"{written} written, {kept} kept. Next: harness validate {os.path.join(args.directory, 'scenarios')}; "
          f"harness run {os.path.join(args.directory, 'scenarios')}; pytest -n 2")
    return 0
