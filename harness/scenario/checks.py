"""Checks across the fields of a valid scenario, made when it is loaded rather than when it runs:
each mock's config (keys and values) in ``services:`` and ``set_config`` steps, the services and
links timeline steps name, and the ``${…}`` variables the run will fill in. Each failure is one
``ScenarioError`` naming the file, line and field."""

from __future__ import annotations

from typing import Any, Iterator

from pydantic import ValidationError

from harness.scenario import reach
from harness.scenario.model import Scenario
from harness.scenario.templates import VARIABLE, has_template
from harness.scenario.yamlpos import Positions, ScenarioError, where
from mocks.registry import callback_sources

Path = tuple[Any, ...]

# what the runner puts in the template context (harness/run/runner.py ``_start``, run/links.py)
_FIXED = {"run": {"id", "dir", "seed", "tls_ca"}, "control": {"url"}, "time_scale": None,
          "target": {"port", "variant", "url", "callback_url"}}
_MOCK = {"url", "direct_url", "config", "host", "port"}
_REDIS = {"host", "port", "url", "direct_url"}


def _dotted(path: Path) -> str:
    from harness.scenario.loader import dotted
    return dotted(path)


def _fail(positions: Positions, name: str, path: Path, message: str) -> ScenarioError:
    return ScenarioError(f"{where(positions, path, name)}: {_dotted(path)}: {message}")


def check(scenario: Scenario, data: dict[str, Any], positions: Positions, name: str) -> None:
    from mocks.registry import available
    mocks = {svc: cls for svc, cls in available().items() if svc in scenario.services}
    for svc, config in scenario.services.items():
        if svc in mocks:
            check_config(mocks[svc], config, ("services", svc), positions, name)
    for svc in scenario.ports:
        if svc not in mocks:
            raise _fail(positions, name, ("ports", svc),
                        f"not a mock of this scenario ({', '.join(mocks) or 'none'})")
    _check_timeline(scenario, mocks, positions, name)
    _check_templates(scenario, data, mocks, positions, name)
    reach.check(scenario, positions, name)


def check_config(cls: Any, config: dict[str, Any], path: Path, positions: Positions, name: str) -> None:
    """Unknown keys by name; values that hold no ``${…}`` validated as the mock will."""
    config_model = cls.Config
    known = set(config_model.model_fields)
    for key in config:
        if key not in known:
            raise _fail(positions, name, path + (key,), f"unknown config key of {cls.name} "
                        f"(known: {', '.join(sorted(known))})")
    static = {k: v for k, v in config.items() if not has_template(v)}
    try:
        config_model.model_validate(static)
    except ValidationError as e:
        from harness.scenario.loader import validation_error
        raise validation_error(e, static, positions, name, path) from None


def _check_timeline(scenario: Scenario, mocks: dict[str, Any], positions: Positions, name: str) -> None:
    links = {link.name for link in scenario.links}
    for i, step in enumerate(scenario.timeline):
        action = step.action
        if action in ("stop_service", "start_service"):
            svc = getattr(step, action)
            if svc not in mocks:
                raise _fail(positions, name, ("timeline", i, action),
                            f"{svc!r} is not a service of this scenario ({', '.join(mocks) or 'none'})")
        elif action == "set_config":
            for svc, patch in (step.set_config or {}).items():
                path = ("timeline", i, "set_config", svc)
                if svc not in mocks:
                    raise _fail(positions, name, path,
                                f"not a service of this scenario ({', '.join(mocks) or 'none'})")
                check_config(mocks[svc], patch, path, positions, name)
        elif action in ("cut_link", "restore_link"):
            link = getattr(step, action)
            if link not in links:
                raise _fail(positions, name, ("timeline", i, action),
                            f"{link!r} is not a link of this scenario ({', '.join(sorted(links)) or 'none'})")


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                yield path + (k,), k
            yield from _strings(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, path + (i,))


def _context(scenario: Scenario, mocks: dict[str, Any]) -> dict[str, Any]:
    """Variable → the names allowed below it (None: anything)."""
    ctx: dict[str, Any] = dict(_FIXED)
    for svc, cls in mocks.items():
        ctx[svc] = _MOCK
        ctx[f"{svc}.config"] = set(cls.Config.model_fields)
    if "redis" in scenario.services:
        ctx["redis"] = _REDIS
    if scenario.target is not None and scenario.target.build is not None:
        ctx["build"] = {"dir"}  # harness/run/build.py
    declared = {link.name for link in scenario.links}
    ctx["target"] = _FIXED["target"] | {f"callback_url_{s}" for s in callback_sources()
                                        if f"{s}->integration" in declared}
    for link in scenario.links:  # an extra link's far end (run/links.py): host, port (redis: url)
        src, dst = link.name.split("->")
        if src == "integration" and dst not in mocks:
            ctx[dst] = set(ctx.get(dst) or ()) | {"host", "port"} | ({"url"} if dst == "redis" else set())
    return ctx


def _unknown(variable: str, ctx: dict[str, Any], local: set[str]) -> bool:
    """True when the run certainly has no such variable; below what is not listed, anything goes."""
    parts = variable.split(".")
    if parts[0] in local:
        return False  # a flow variable (its fields depend on its kind), n or flow
    key = parts[0]
    if key not in ctx:
        return True
    for part in parts[1:]:
        allowed = ctx.get(key)
        if not isinstance(allowed, set):
            return False
        if part not in allowed:
            return True
        key = f"{key}.{part}"
    return False


def _check_templates(scenario: Scenario, data: dict[str, Any], mocks: dict[str, Any], positions: Positions,
                     name: str) -> None:
    ctx = _context(scenario, mocks)
    places: list[tuple[Path, Any, set[str]]] = [(("services",), data.get("services") or {}, set())]
    target = data.get("target") or {}
    if isinstance(target, dict):
        places += [(("target", key), target.get(key), set()) for key in ("url", "command", "env")]
    for i, flow in enumerate(scenario.traffic):
        local = set(flow.vars) | {"n", "flow"}
        raw = data["traffic"][i].get("request")
        places.append((("traffic", i, "request"), raw, local))
    for i, step in enumerate(scenario.timeline):
        if step.set_config is not None:
            places.append((("timeline", i, "set_config"), data["timeline"][i]["set_config"], set()))
    for base, value, local in places:
        for path, text in _strings(value, base):
            for m in VARIABLE.finditer(text):
                if _unknown(m.group(1), ctx, local):
                    known = sorted(local | {k for k in ctx if "." not in k})
                    raise _fail(positions, name, path, f"unknown template variable ${{{m.group(1)}}} "
                                f"(known: {', '.join(known)})")
