"""Load and validate scenario files. Every problem is one line naming file, line and field:
``scenarios/x.yaml:14: timeline[2].at: expected a duration like "5s"``."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from pydantic import ValidationError

from harness.scenario.model import Scenario
from harness.scenario.yamlpos import Positions, ScenarioError, load_yaml, relpath, where

MAX_EXTENDS_DEPTH = 8


def dotted(path: tuple[Any, ...]) -> str:
    """``traffic[0].request.path``. A key that is blank, starts or ends with a space, or holds a dot,
    bracket or quote is shown quoted (``[" "]``, ``["a.b"]``) so the path reads one way only;
    unprintable characters are escaped by ``ScenarioError``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _plain_key(str(part)):
            out += f"[{json.dumps(str(part), ensure_ascii=False)}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _plain_key(key: str) -> bool:
    return bool(key) and key == key.strip() and not any(c in key for c in '.[]"')


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
    """Deep merge for ``extends``: mappings merge, ``key: null`` deletes the key, everything else
    (lists too) is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = merge(base[k], v) if k in base else _without_nulls(v)
        return out
    return _without_nulls(over)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return copy.deepcopy(value)


class PartialRequest(ValueError):
    """A child flow's ``request`` mapping over a parent's ``${profile.…}`` request: that one is only
    filled in from the profile after ``extends`` is merged, so there is nothing to merge into."""

    def __init__(self, index: int, flow: str, template: str):
        super().__init__(f"traffic[{index}].request: flow {flow!r} inherits {template}, filled in from the "
                         "profile only later, so a part of a request cannot be merged into it: give the whole "
                         "request (with its path or url), or change the profile's")
        self.index = index


def merge_flows(base: Any, over: Any) -> Any:
    """``traffic`` lists merge by flow ``name``: a child's flow of a parent's name merges into it (its
    ``request`` too; over a ``${profile.…}`` request only a whole one, with path or url), a new name is
    appended, ``{name: x, drop: true}`` removes flow ``x``."""
    if not (isinstance(base, list) and isinstance(over, list)):
        return merge(base, over)
    out = list(base)
    index = {f.get("name"): i for i, f in enumerate(out) if isinstance(f, dict)}
    for flow in over:
        name = flow.get("name") if isinstance(flow, dict) else None
        if name in index and flow.get("drop") is True:
            out[index[name]] = None
        elif name in index:
            inherited, own = out[index[name]].get("request"), flow.get("request")
            if isinstance(inherited, str) and "${profile." in inherited and isinstance(own, dict):
                if not {"path", "url"} & set(own):
                    raise PartialRequest(over.index(flow), name, inherited)
                out[index[name]] = {**out[index[name]], "request": None}  # a whole request replaces it
            out[index[name]] = merge(out[index[name]], flow)
        else:
            out.append(_without_nulls(flow))
    return [f for f in out if f is not None]


def merge_expect(base: list[Any], over: list[Any]) -> list[Any]:
    """A child's ``expect`` adds to its parent's; an entry for an invariant that both list exactly
    once, for the same ``flow`` (or none), merges its parameters into the parent's
    (``verification_enforced: {allowed_status: [201]}``). ``journal_count`` entries always add."""
    def names(items: list[Any]) -> list[Any]:
        return [next(iter(i)) if isinstance(i, dict) and len(i) == 1 and next(iter(i)) != "journal_count" else None
                for i in items]

    def flow(item: Any) -> Any:
        params = next(iter(item.values()))
        return params.get("flow") if isinstance(params, dict) else None
    out = copy.deepcopy(base)
    parent, child = names(base), names(over)
    for name, item in zip(child, over):
        if name is not None and parent.count(name) == 1 and child.count(name) == 1 \
                and flow(base[parent.index(name)]) == flow(item):
            i = parent.index(name)
            out[i] = {name: merge(out[i][name] or {}, item[name] or {})}
        else:
            out.append(_without_nulls(item))
    return out


def merge_document(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """One ``extends`` step: ``merge``, except that flows merge by name, a child's ``expect`` adds to
    its parent's (``merge_expect``), and a child whose ``target`` gives its own ``command`` or ``url``
    replaces the parent's target whole (no env leaks in) and the parent's ``profile``."""
    out = merge(base, {k: v for k, v in over.items() if k not in ("traffic", "target", "expect")})
    if isinstance(over.get("expect"), list) and isinstance(base.get("expect"), list):
        out["expect"] = merge_expect(base["expect"], over["expect"])
    elif "expect" in over:
        out["expect"] = _without_nulls(over["expect"])
    if "traffic" in over:
        out["traffic"] = merge_flows(base.get("traffic"), over["traffic"]) if over["traffic"] is not None else None
    target = over.get("target", ...)
    if target is None:
        out.pop("target", None)
    elif isinstance(target, dict) and ({"command", "url"} & set(target)):
        out["target"] = _without_nulls(target)
        if "profile" not in over:
            out.pop("profile", None)  # a target of its own replaces the inherited profile too
    elif target is not ...:
        out["target"] = merge(base.get("target"), target) if "target" in base else _without_nulls(target)
    return {k: v for k, v in out.items() if v is not None}


def resolve_paths(data: dict[str, Any], folder: str) -> None:
    """Make a document's own paths independent of the shell's folder: ``profile``, ``target.cwd``
    (default: the file's folder) and a relative program path in ``target.command`` resolve from
    ``folder``."""
    if isinstance(data.get("profile"), str) and not os.path.isabs(data["profile"]):
        data["profile"] = os.path.normpath(os.path.join(folder, data["profile"]))
    target = data.get("target")
    if not isinstance(target, dict) or target.get("command") is None and target.get("cwd") is None:
        return
    cwd = target.get("cwd")
    if isinstance(cwd, str) and not os.path.isabs(cwd) and "${" not in cwd:
        target["cwd"] = os.path.normpath(os.path.join(folder, cwd))
    elif cwd is None and target.get("command") is not None:
        target["cwd"] = os.path.abspath(folder)
    command = target.get("command")
    if isinstance(command, list) and command and isinstance(command[0], str):
        target["command"] = [_program(command[0], folder)] + command[1:]
    elif isinstance(command, str):
        program = command.split(None, 1)[0] if command.strip() else ""
        if program and program == _program(program, folder):
            return
        lead = len(command) - len(command.lstrip())
        target["command"] = _program(program, folder) + command[lead + len(program):]


def _program(program: str, folder: str) -> str:
    if "/" in program and not os.path.isabs(program) and "${" not in program and not program.startswith(("'", '"')):
        return os.path.normpath(os.path.join(folder, program))
    return program


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
    resolve_paths(data, os.path.dirname(os.path.abspath(path)))
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
        merged = merge_document(merged, pdata)
        merged_pos.update(ppos)
    own = {k: v for k, v in data.items() if k != "extends"}
    try:
        merged = merge_document(merged, own)
    except PartialRequest as e:
        raise ScenarioError(f"{where(positions, ('traffic', e.index, 'request'), name)}: {e}") from None
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
        merged = merge_document(merged, pdata)
    try:
        return merge_document(merged, data)
    except PartialRequest as e:
        raise ScenarioError(str(e)) from None


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


def load_scenario(path: str, profile: str | None = None) -> Scenario:
    """``profile``: a target profile file that replaces the scenario's own ``profile:``."""
    data, positions = load_document(path)
    data.pop("extends", None)
    data = with_profile(data, positions, relpath(path), profile)
    return validate(data, positions, relpath(path))


def with_profile(data: dict[str, Any], positions: Positions, name: str, profile: str | None) -> dict[str, Any]:
    """The document with its target profile applied (``profile`` wins over the scenario's own)."""
    from harness.scenario.profile import apply_profile, substitute
    chosen = profile or data.get("profile")
    if chosen is None:
        return substitute(data, None, positions, name, None, ())
    if not isinstance(chosen, str):
        raise ScenarioError(f"{where(positions, ('profile',), name)}: profile: expected a path")
    if not os.path.isfile(chosen):
        field = "--profile" if profile else f"{where(positions, ('profile',), name)}: profile"
        raise ScenarioError(f"{field}: no such profile file {relpath(chosen)}")
    own = data.get("profile")  # --profile naming the scenario's own profile: as if not given
    same = isinstance(own, str) and os.path.abspath(own) == os.path.abspath(chosen)
    return apply_profile(data, positions, name, chosen, keep_target_tweaks=profile is None or same)


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
