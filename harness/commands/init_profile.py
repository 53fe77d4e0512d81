"""``harness init --profile [PATH]`` (``harness/commands/init.py`` dispatches here): write a commented starter target profile (docs/profiles.md) —
the target part to fill in, and one commented section per registered service with the roles the
bundled catalogue asks for and the actions the service knows."""

from __future__ import annotations

import argparse
import os

from harness.cli import CliError

HEAD = """\
# Target profile: your integration, and nothing else (docs/profiles.md).
# Every path here resolves from this file's folder. Use it with
#   harness run scenarios/<service> --profile {path}
#   harness load SCENARIO --profile {path}        pytest --scenarios scenarios --harness-profile {path}
name: my-integration
description: what it is, in one line
target:
  # how to start it (the harness starts and stops it for each run) ...
  command: python app.py          # `python` runs the harness's own interpreter (its venv)
  cwd: .                          # where it runs (default: this file's folder)
  # build: go build -o ${{build.dir}}/app .   # a compiled app: built once per content, then command: ${{build.dir}}/app
  env:                            # ${{…}}: the run's ports and mock URLs, known only at run time
    PORT: "${{target.port}}"          # a free port chosen for the target
    VARIANT: "${{target.variant}}"    # --variant NAME ("" is a variant too)
{env}  # ... or where it already runs (then no command):
  # url: http://127.0.0.1:8000    (point it at fixed mock ports: `port:` under each service below)
  ready: {{path: /health, status: 200, timeout: 20s}}   # GET path answers status: it is up
services:                         # the services it uses (delete the others)
"""


CATALOGUE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scenarios")


def _catalogue_roles(folder: str = CATALOGUE) -> dict[str, set[str]]:
    """``${profile.<service>.<role>}`` references in the bundled catalogue, per service."""
    from harness.scenario.profile import PROFILE_REF
    roles: dict[str, set[str]] = {}
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith((".yaml", ".yml")):
                with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                    for m in PROFILE_REF.finditer(f.read()):
                        roles.setdefault(m.group(1), set()).add(m.group(2))
    return roles


def starter(path: str) -> str:
    from mocks.registry import SERVICES
    roles = _catalogue_roles()
    env = "".join(f"    # {svc.upper()}_URL: \"${{{svc}.url}}\"\n" for svc in SERVICES)
    out = HEAD.format(path=path, env=env)
    for svc, spec in SERVICES.items():
        known = list(getattr(spec.vocabulary, "ACTIONS", ()) or ())
        actions = ", ".join(known[:6]) + (", … (docs/profiles.md)" if len(known) > 6 else "")
        out += f"  {svc}:\n"
        out += f"    config: {{}}                  # the {svc} mock's config it needs (harness schema; docs/profiles.md)\n"
        out += f"    calls: []                   # the {svc} actions it calls, of: {actions}\n"
        out += "    requests:                   # how to drive it, by role\n"
        for role in sorted(roles.get(svc, ())):
            out += (f"      {role}: {{method: POST, path: /{role}, json: {{}}}}"
                    f"   # the catalogue uses ${{profile.{svc}.{role}}}\n")
        if not roles.get(svc):
            out += "      {}\n"
        out += "    expect: {}                  # defaults for its invariants' parameters (e.g. allowed_status)\n"
        out += f"    # port: 18081                # a fixed port for the {svc} mock: for an app that runs already (url)\n"
    out += "  # redis: {}                    # a Redis started for it (${redis.url})\n"
    out += "# tls: [<service>]               # the mocks it only reaches over https (an SDK that hard-codes https://)\n"
    return out


def main(args: argparse.Namespace) -> int:
    path = args.profile
    if os.path.exists(path) and not args.force:
        raise CliError(f"{path}: exists (give --force to overwrite)")
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(starter(path))
    except OSError as e:
        raise CliError(f"{path}: cannot write: {e.strerror}") from None
    print(f"wrote {path}: fill in target and the services it uses, then "
          f"`harness validate SCENARIO --profile {path}`")
    return 0
