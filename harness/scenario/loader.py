"""Load and validate scenario files. Every problem is one line naming file, line and field:
``scenarios/x.yaml:14: timeline[2].at: expected a duration like "5s"``."""

from __future__ import annotations

import copy
import os
from typing import Any

from pydantic import ValidationError

from harness.scenario.model import Scenario
from harness.scenario.yamlpos import Positions, ScenarioError, load_yaml, relpath, where

MAX_EXTENDS_DEPTH = 8


def dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clean_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Map a pydantic error location onto the document: drop union/validator tags."""
    out: list[Any] = []
    cur = data
    for part in loc:
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(part, str) and part.isidentifier() and part[:1].islower() and isinstance(cur, dict):
            out.append(part)  # a missing or unknown field
            break
    return tuple(out)


_MESSAGES = {"Extra inputs are not permitted": "unknown field", "Field required": "required field missing"}


def _message(err: dict[str, Any]) -> str:
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return _MESSAGES.get(msg, msg)


def validation_error(e: ValidationError, data: Any, positions: Positions, name: str,
                     prefix: tuple[Any, ...] = ()) -> ScenarioError:
    errors = e.errors()
    # prefer the most specific error (deepest location) among union alternatives
    first = max(errors, key=lambda x: len(_clean_loc(tuple(x["loc"]), data)))
    loc = prefix + _clean_loc(tuple(first["loc"]), data)
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    field = dotted(loc) or "(top level)"
    return ScenarioError(f"{where(positions, loc, name)}: {field}: {_message(first)}{more}")


def merge(base: Any, over: Any) -> Any:
    """Deep merge for ``extends``: mappings merge, everything else (lists too) is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def load_document(path: str, _chain: tuple[str, ...] = ()) -> tuple[dict[str, Any], Positions]:
    """Raw document with ``extends`` resolved (deep merge; lists replace), plus positions."""
    name = relpath(path)
    if len(_chain) > MAX_EXTENDS_DEPTH:
        raise ScenarioError(f"{name}: extends nested more than {MAX_EXTENDS_DEPTH} deep")
    if os.path.abspath(path) in _chain:
        raise ScenarioError(f"{name}: extends itself (cycle: {' -> '.join(map(relpath, _chain))})")
    data, positions = load_yaml(path)
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise ScenarioError(f"{name}:1: expected a mapping with name, traffic, timeline, expect… (got {kind})")
    parents = data.get("extends")
    if parents is None:
        return data, positions
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise ScenarioError(f"{where(positions, ('extends',), name)}: extends: expected a path or a list of paths")
    merged: dict[str, Any] = {}
    merged_pos: Positions = {}
    for i, parent in enumerate(parents):
        ppath = os.path.join(os.path.dirname(path), parent)
        if not os.path.exists(ppath):
            loc = ("extends", i) if isinstance(data["extends"], list) else ("extends",)
            raise ScenarioError(f"{where(positions, loc, name)}: extends: no such file {relpath(ppath)}")
        pdata, ppos = load_document(ppath, _chain + (os.path.abspath(path),))
        pdata.pop("extends", None)
        merged = merge(merged, pdata)
        merged_pos.update(ppos)
    own = {k: v for k, v in data.items() if k != "extends"}
    merged = merge(merged, own)
    merged_pos.update(positions)
    return merged, merged_pos


def resolve_extends(data: dict[str, Any], base_dir: str) -> dict[str, Any]:
    """``extends`` of an in-memory scenario (pytest ``run_scenario(dict)``), relative to ``base_dir``."""
    data = dict(data)
    parents = data.pop("extends", None)
    if parents is None:
        return data
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else list(parents):
        path = os.path.join(base_dir, parent)
        if not os.path.exists(path):
            raise ScenarioError(f"extends: no such file {relpath(path)}")
        pdata, ppos = load_document(path)
        pdata.pop("extends", None)
        anchor_cwd(pdata, ppos)
        merged = merge(merged, pdata)
    return merge(merged, data)


def validate(data: Any, positions: Positions, name: str) -> Scenario:
    from harness.verdict import REGISTRY
    from mocks.registry import SERVICES
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as e:
        raise validation_error(e, data, positions, name) from None
    known_services = set(SERVICES) | {"redis"}
    for svc in scenario.services:
        if svc not in known_services:
            raise ScenarioError(f"{where(positions, ('services', svc), name)}: services.{svc}: unknown service "
                                f"(known: {', '.join(sorted(known_services))})")
    for i, svc in enumerate(scenario.tls):
        if svc not in scenario.services or svc not in SERVICES:
            raise ScenarioError(f"{where(positions, ('tls', i), name)}: tls[{i}]: {svc!r} is not a mock this "
                                f"scenario runs (services: {', '.join(s for s in scenario.services if s in SERVICES)})")
    for i, item in enumerate(scenario.expect):
        (inv, params), = item.items()
        loc = ("expect", i, inv)
        if inv not in REGISTRY:
            raise ScenarioError(f"{where(positions, loc, name)}: {dotted(loc)}: unknown invariant "
                                f"(known: {', '.join(sorted(REGISTRY))})")
        try:
            REGISTRY[inv].params.model_validate(params or {})
        except ValidationError as e:
            raise validation_error(e, params or {}, positions, name, loc) from None
    flows = {f.name for f in scenario.traffic}
    if len(flows) != len(scenario.traffic):
        raise ScenarioError(f"{where(positions, ('traffic',), name)}: traffic: flow names must be unique")
    from harness.scenario.checks import check
    check(scenario, data, positions, name)
    return scenario


def load_scenario(path: str) -> Scenario:
    data, positions = load_document(path)
    data.pop("extends", None)
    anchor_cwd(data, positions)
    return validate(data, positions, relpath(path))


def anchor_cwd(data: dict[str, Any], positions: Positions) -> None:
    """A relative ``target.cwd`` is relative to the file that sets it (a shared ``_targets/`` file
    says ``cwd: ../..`` and its command finds ``examples/`` from any working directory)."""
    target = data.get("target")
    cwd = target.get("cwd") if isinstance(target, dict) else None
    hit = positions.get(("target", "cwd"))
    if isinstance(cwd, str) and cwd and not os.path.isabs(cwd) and hit:
        target["cwd"] = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(hit[0])), cwd))


def load_scenario_data(data: Any, name: str = "<scenario>") -> Scenario:
    """Validate an in-memory document (pytest ``run_scenario(dict)``, replay)."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{name}: expected a mapping")
    return validate(data, {}, name)


def is_partial(path: str) -> bool:
    """Files named ``_*.yaml`` (or under a ``_*`` folder) are shared fragments, not scenarios."""
    return any(part.startswith("_") for part in os.path.normpath(path).split(os.sep) if part not in (".", ".."))


def discover(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
                out += [os.path.join(root, f) for f in sorted(files)
                        if f.endswith((".yaml", ".yml")) and not f.startswith("_")]
        else:
            out.append(p)
    return out
