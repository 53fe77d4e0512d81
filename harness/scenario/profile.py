"""Target profiles: one YAML file describing a user's integration and nothing else — how to start it
(or where it runs), how to tell it is ready, and per service it uses the mock config it needs, the
requests that drive it (by role: ``login``, ``submit`` …), the REST calls it makes and what its
answers mean. A scenario refers to the profile's parts as ``${profile.<service>.<role>}``; with a
profile (``profile:`` in the scenario, or ``--profile`` which wins) the scenario's ``target`` is
the profile's. Docs: docs/profiles.md.
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.scenario.model import HttpRequest, Link, Target
from harness.scenario.yamlpos import Positions, ScenarioError, load_yaml, relpath, where

PROFILE_REF = re.compile(r"\$\{profile\.([A-Za-z0-9_\-]+)\.([A-Za-z0-9_\-]+)((?:\.[A-Za-z0-9_\-]+)*)\}")


NOT_ROLES = ("config", "calls", "expect")  # a service section's other parts (also ${profile.<svc>.config.…})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServiceProfile(_Strict):
    """How the integration uses one service (a mock, or ``redis``)."""

    config: dict[str, Any] = Field(default_factory=dict, description="mock config the integration needs, "
                                   "over the scenario's (e.g. where webhooks go, the site's field names)")
    requests: dict[str, HttpRequest] = Field(default_factory=dict, description="requests by role "
                                             "(login, submit …), used in scenarios as ${profile.<service>.<role>}")
    calls: list[str] = Field(default_factory=list, description="the service's actions the integration "
                             "calls (documentation, checked against the service's vocabulary)")
    expect: dict[str, Any] = Field(default_factory=dict, description="defaults for the parameters of this "
                                   "service's invariants (e.g. allowed_status: what counts as let in)")
    port: int | None = Field(default=None, ge=1, le=65535, description="a fixed port for this service's mock, "
                             "for an integration that runs already (target.url) and reads the mock's URL from "
                             "its own configuration; default: a free port per run")


class Profile(_Strict):
    name: str = ""
    description: str = ""
    target: Target
    services: dict[str, ServiceProfile] = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list, description="links the integration's own calls take, added "
                              "to the scenario's (e.g. its third-party site through mitmproxy: `mitm: true`)")
    tls: list[str] = Field(default_factory=list, description="services the integration only reaches over "
                           "https (an https-only SDK): added to every scenario's tls when the profile is applied")


def load_profile(path: str) -> tuple[Profile, dict[str, Any], Positions]:
    """The validated profile and its raw document (paths resolved from the profile's folder)."""
    from harness.scenario.loader import resolve_paths, validation_error
    name = relpath(path)
    if not os.path.isfile(path):
        raise ScenarioError(f"{name}: no such profile file")
    data, positions = load_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError(f"{name}:1: expected a mapping with target, services")
    resolve_paths(data, os.path.dirname(os.path.abspath(path)))
    try:
        profile = Profile.model_validate(data)
    except ValidationError as e:
        raise validation_error(e, data, positions, name) from None
    _check_services(profile, positions, name)
    _check_tls(profile, positions, name)
    return profile, data, positions


def _check_services(profile: Profile, positions: Positions, name: str) -> None:
    from mocks.registry import SERVICES
    known = set(SERVICES) | {"redis"}
    for svc, part in profile.services.items():
        if svc not in known:
            raise ScenarioError(f"{where(positions, ('services', svc), name)}: services.{svc}: unknown service "
                                f"(known: {', '.join(sorted(known))})")
        actions = getattr(SERVICES[svc].vocabulary, "ACTIONS", ()) if svc in SERVICES else ()
        for i, call in enumerate(part.calls):
            if actions and call not in actions:
                raise ScenarioError(f"{where(positions, ('services', svc, 'calls', i), name)}: services.{svc}."
                                    f"calls[{i}]: {call!r} is not an action of {svc} "
                                    f"(known: {', '.join(sorted(actions))})")


def _check_tls(profile: Profile, positions: Positions, name: str) -> None:
    from mocks.registry import SERVICES
    for i, svc in enumerate(profile.tls):
        if svc not in profile.services or svc not in SERVICES:
            mocks = ", ".join(s for s in profile.services if s in SERVICES) or "none"
            raise ScenarioError(f"{where(positions, ('tls', i), name)}: tls[{i}]: {svc!r} is not a mock this "
                                f"profile uses (its services: {mocks})")


def apply_profile(data: dict[str, Any], positions: Positions, name: str, path: str,
                  keep_target_tweaks: bool = False) -> dict[str, Any]:
    """The scenario document run against the profile at ``path``: its target, its services' config
    over the scenario's, ``${profile.…}`` replaced, its invariant defaults filled in.
    ``keep_target_tweaks``: the scenario names this profile itself, so a ``target`` of its own
    without ``command`` / ``url`` (e.g. one more env variable) merges over the profile's; a profile
    given from outside (``--profile``) takes nothing of the scenario's target."""
    from harness.scenario.loader import merge
    profile, raw, ppos = load_profile(path)
    out = dict(data)
    own = data.get("target")
    tweaks = keep_target_tweaks and isinstance(own, dict) and not ({"command", "url"} & set(own))
    out["target"] = merge(copy.deepcopy(raw["target"]), own) if tweaks else copy.deepcopy(raw["target"])
    for key in [k for k in positions if k[:1] == ("target",)]:
        del positions[key]
    positions.update({k: v for k, v in ppos.items() if k[:1] == ("target",)})
    services = dict(out.get("services") or {})
    for svc, part in profile.services.items():
        services[svc] = merge(services.get(svc) or {}, copy.deepcopy(raw["services"][svc].get("config") or {}))
    out["services"] = services
    fixed = {svc: part.port for svc, part in profile.services.items() if part.port is not None}
    if fixed:
        out["ports"] = {**(out.get("ports") or {}), **fixed}
        positions.update({("ports", svc): ppos[("services", svc, "port")] for svc in fixed
                          if ("services", svc, "port") in ppos})
    if raw.get("links"):  # the integration's own links join the scenario's
        declared = {k if isinstance(k, str) else k.get("name") for k in out.get("links") or []}
        out["links"] = list(out.get("links") or []) + [copy.deepcopy(k) for k in raw["links"]
                                                        if k.get("name") not in declared]
    positions.update({("services", k[1], *k[3:]): v for k, v in ppos.items()
                      if k[:1] == ("services",) and k[2:3] == ("config",)})
    if profile.tls:
        out["tls"] = _with_tls(out.get("tls"), profile.tls, positions, ppos)
    parts = {svc: {**copy.deepcopy(raw["services"][svc].get("requests") or {}),
                   **{k: copy.deepcopy(raw["services"][svc][k]) for k in NOT_ROLES
                      if k in raw["services"][svc]}}
             for svc in profile.services}
    for key in ("traffic", "timeline"):
        if key in out:
            out[key] = substitute(out[key], parts, positions, name, path, (key,))
    out["expect"] = [_with_defaults(item, profile) for item in out.get("expect") or []]
    out["profile"] = os.path.abspath(path)
    return out


def _with_tls(own: Any, needed: list[str], positions: Positions, ppos: Positions) -> Any:
    """The scenario's ``tls`` plus the services the profile only reaches over https (each once);
    an added entry's errors name the profile's line."""
    if not isinstance(own, (list, type(None))):
        return own  # not a list: the scenario's own error, reported by validate
    out = list(own or [])
    for i, svc in enumerate(needed):
        if svc not in out:
            if ("tls", i) in ppos:
                positions[("tls", len(out))] = ppos[("tls", i)]
            out.append(svc)
    return out


def _with_defaults(item: Any, profile: Profile) -> Any:
    from harness.verdict import REGISTRY, invariant_service
    if not isinstance(item, dict) or len(item) != 1:
        return item
    (inv, params), = item.items()
    svc = invariant_service(inv)
    if svc not in profile.services or inv not in REGISTRY or not (params is None or isinstance(params, dict)):
        return item
    fields = REGISTRY[inv].params.model_fields
    defaults = {k: v for k, v in profile.services[svc].expect.items() if k in fields}
    return {inv: {**defaults, **(params or {})}}


def substitute(value: Any, parts: dict[str, Any] | None, positions: Positions, name: str, path: str | None,
               loc: tuple[Any, ...]) -> Any:
    """Replace ``${profile.<service>.<part>[.more]}``: a string that is exactly one reference becomes
    the value (a whole request), otherwise the value is formatted into the string."""
    if isinstance(value, dict):
        return {k: substitute(v, parts, positions, name, path, loc + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, parts, positions, name, path, loc + (i,)) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${profile." not in value:
        return value
    whole = PROFILE_REF.fullmatch(value)
    if whole:
        return copy.deepcopy(_lookup(whole, parts, positions, name, path, loc))
    return PROFILE_REF.sub(lambda m: str(_lookup(m, parts, positions, name, path, loc)), value)


def _lookup(m: re.Match, parts: dict[str, Any] | None, positions: Positions, name: str, path: str | None,
            loc: tuple[Any, ...]) -> Any:
    from harness.scenario.loader import dotted
    here = f"{where(positions, loc, name)}: {dotted(loc)}"
    if parts is None:
        raise ScenarioError(f"{here}: {m.group(0)} needs a target profile (profile: in the scenario, or --profile)")
    svc, role, rest = m.group(1), m.group(2), m.group(3)
    cur: Any = parts.get(svc, {}).get(role) if svc in parts else None
    for key in [k for k in rest.split(".") if k]:
        cur = cur.get(key) if isinstance(cur, dict) else None
    if cur is None:
        given = ", ".join(f"{s}.{r}" for s in parts for r in parts[s] if r not in NOT_ROLES) or "no requests"
        raise ScenarioError(f"{here}: the profile {relpath(path or '')} gives no {m.group(0)[10:-1]} "
                            f"(it gives: {given})")
    return cur
