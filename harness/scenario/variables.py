"""Scenario traffic variables (a flow's ``vars:``): the kinds and the seeded maker, free of I/O.

A kind is a function ``fn(spec, ctx: VarContext)`` that returns the value, or a generator function
that yields ``ControlRequest``s (control-API calls, e.g. to have a mock issue a ticket), is sent a
``ControlAnswer`` for each, and returns the value. The asyncio traffic driver
(``harness.run.traffic``) and the gevent load users (``harness.load.vars_sync``) make those calls
their own way. The generic kinds live here; each service adds its own through its registry entry.
Seeded: a replay makes the same values (one ``random.Random`` per flow, drawn in request order).
"""

from __future__ import annotations

import inspect
import json
import random
from dataclasses import dataclass
from typing import Any, Callable

from mocks.registry import SERVICES, var_kinds


@dataclass(frozen=True)
class ControlRequest:
    method: str
    path: str          # under the control API's URL, e.g. ``/<service>/tickets``
    json: Any = None


@dataclass(frozen=True)
class ControlAnswer:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass(frozen=True)
class VarContext:
    rng: random.Random
    faker: Any
    config: dict[str, Any]   # the declaring service's config in the run context ({} for generic kinds)


def _value(spec: Any, ctx: VarContext) -> Any:
    return spec


def _choice(spec: Any, ctx: VarContext) -> Any:
    return ctx.rng.choice(list(spec))


def _random_hex(spec: Any, ctx: VarContext) -> str:
    return "".join(ctx.rng.choice("0123456789abcdef") for _ in range(int(spec or 16)))


def _faker(spec: Any, ctx: VarContext) -> Any:
    name, args = (spec, {}) if isinstance(spec, str) else (spec.get("provider"), spec.get("args") or {})
    return getattr(ctx.faker, name)(**args)


GENERIC: dict[str, Callable[[Any, VarContext], Any]] = {
    "faker": _faker, "value": _value, "choice": _choice, "random_hex": _random_hex}


def kinds() -> dict[str, tuple[str | None, Callable[..., Any]]]:
    """Kind → (the service declaring it or None, its function)."""
    return {**{k: (None, fn) for k, fn in GENERIC.items()}, **var_kinds()}


def kind_names() -> tuple[str, ...]:
    return tuple(kinds())


def service_configs(run_ctx: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each registered service's config from a run context (``{<service>: {"config": …}}``)."""
    return {name: (run_ctx.get(name) or {}).get("config") or {} for name in SERVICES}


class VarMaker:
    """Starts variables of one flow: ``start(kind, spec)`` is the value or a generator of control calls."""

    def __init__(self, seed: int, configs: dict[str, dict[str, Any]]):
        from faker import Faker
        self.rng = random.Random(seed)
        self.faker = Faker()
        self.faker.seed_instance(seed)
        self.configs = configs
        self.kinds = kinds()

    def start(self, kind: str, spec: Any) -> Any:
        found = self.kinds.get(kind)
        if found is None:
            raise ValueError(f"unknown var kind {kind}")
        owner, fn = found
        return fn(spec, VarContext(self.rng, self.faker, self.configs.get(owner or "") or {}))


def run_blocking(started: Any, call: Callable[[ControlRequest], ControlAnswer]) -> Any:
    """A started variable's value, making its control calls with a blocking ``call``."""
    if not inspect.isgenerator(started):
        return started
    answer = None
    while True:
        try:
            request = started.send(answer)
        except StopIteration as done:
            return done.value
        answer = call(request)
