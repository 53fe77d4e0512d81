"""Which services exist, and everything the harness knows about each.

A service is one folder under ``mocks/`` that declares a ``Service`` (``mocks/<svc>/spec.py``), and
one line in ``BUILT_IN``. The core (``harness/``) never names a service: it asks this registry for
the mock class, the raw-request parser its proxies use, the scenario variable kinds, the
invariants, the services that call the integration back, the requests that count as the
integration's activity, and the pytest handle. ``register(spec)`` adds one at run time (a test's
toy service). Spec fields that would pull in heavy or circular imports may be given as
``"module:attr"`` strings (``"module"`` for ``invariants``); they are imported on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

if TYPE_CHECKING:
    from mocks.base.service import ServiceMock

# the built-in services, in order: this order is the report's lane order and the default start order
BUILT_IN = ("mocks.captcha.spec", "mocks.solver.spec", "mocks.chat.spec")

RawRequestParser = Callable[[str, str, dict[str, Any], Mapping[str, str], bytes], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Service:
    """What one service brings to the harness. Only ``name`` and ``mock`` are required."""

    name: str
    mock: "type[ServiceMock] | str"
    #: the names its mock journals and its invariants read (a module; documentation for readers)
    vocabulary: Any = None
    #: ``(method, path, params, headers, body) -> (action, params)``: what the mock would call a raw
    #: request, for the proxies when the host runs no mock of it (``params`` holds the query already)
    parse_raw_request: "RawRequestParser | str | None" = None
    #: scenario traffic variable kinds: ``{kind: fn(spec, VarContext)}`` (see ``harness.scenario.variables``)
    var_kinds: "Mapping[str, Callable[..., Any]] | str" = field(default_factory=dict)
    #: a module (or its dotted name) of ``@invariant`` functions, or a function that registers them
    invariants: "Any | str | None" = None
    #: it calls the integration back: a ``<name>->integration`` link exists, ``callback_url_<name>``
    calls_back: bool = False
    #: actions of its journaled requests that are the integration's activity (e.g. using a result):
    #: a run settles only once these have been quiet for a moment (polls are not activity)
    activity_actions: tuple[str, ...] = ()
    #: the ``MockHandle`` subclass the ``<name>_mock`` pytest fixture returns
    handle: Any = None
    #: one line for the ``<name>_mock`` fixture's help
    fixture_doc: str = ""
    #: what ``harness explore`` may inject into it and which invariants then apply (a
    #: ``harness.explore.space.FaultSpace`` or ``"module:attr"``; None: only transport faults)
    explore: Any = None

    def resolved(self, attr: str) -> Any:
        return resolve(getattr(self, attr))


def lazy_exports(exports: dict[str, str]) -> Callable[[str], Any]:
    """A package's ``__getattr__`` importing ``{name: module}`` on first use, so that reading its
    registry entry does not import its mock (aiohttp …)."""
    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(name)
        return getattr(importlib.import_module(exports[name]), name)
    return __getattr__


def resolve(ref: Any) -> Any:
    """A ``"module:attr"`` / ``"module"`` string imported; anything else as it is."""
    if not isinstance(ref, str):
        return ref
    module_name, _, attr = ref.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


class _Services(Mapping[str, Service]):
    """Name → ``Service``, in registration order; the built-ins are imported on first use."""

    def __init__(self) -> None:
        self._specs: dict[str, Service] = {}
        self._loaded = False
        self._listeners: list[Callable[[Service], None]] = []

    def _load(self) -> dict[str, Service]:
        if not self._loaded:
            self._loaded = True
            for module_name in BUILT_IN:
                self._add(importlib.import_module(module_name).SERVICE)
        return self._specs

    def _add(self, spec: Service) -> Service:
        if spec.name in self._specs and self._specs[spec.name] is not spec:
            raise ValueError(f"service {spec.name!r} is already registered")
        self._specs[spec.name] = spec
        return spec

    def __getitem__(self, name: str) -> Service:
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._load()))

    def __len__(self) -> int:
        return len(self._load())


SERVICES = _Services()


def register(spec: Service) -> Service:
    """Add a service (e.g. a test's toy service); whoever listens (the verdict package: its
    invariants) hears of it now."""
    SERVICES._load()
    SERVICES._add(spec)
    for listener in list(SERVICES._listeners):
        listener(spec)
    return spec


def on_register(listener: Callable[[Service], None]) -> None:
    """Call ``listener(spec)`` for each service registered from now on."""
    SERVICES._listeners.append(listener)


def unregister(name: str) -> None:
    """Remove a service added with ``register`` (its invariants stay registered)."""
    SERVICES._load().pop(name, None)


def available() -> dict[str, type["ServiceMock"]]:
    """The registered mocks, in registration order."""
    return {name: spec.resolved("mock") for name, spec in SERVICES.items()}


def callback_sources() -> list[str]:
    """Services that call the integration back (each gets a ``<name>->integration`` link)."""
    return [name for name, spec in SERVICES.items() if spec.calls_back]


# actions the mock pipeline (``mocks/base/service.py``) journals for any service: a body it could not
# read, a request its ``parse`` refused without naming one
PIPELINE_ACTIONS = ("malformed", "invalid")


def actions(service: str | None) -> frozenset[str] | None:
    """The actions a service's requests and callbacks are journaled with: its vocabulary's
    ``ACTIONS`` and the pipeline's own. None: not a registered service, or one that does not list
    them (rules naming an action of it are then not checked)."""
    spec = SERVICES.get(service or "")
    listed = getattr(spec.vocabulary, "ACTIONS", None) if spec is not None else None
    return None if listed is None else frozenset((*listed, *PIPELINE_ACTIONS))


def is_activity(service: str | None, action: str | None) -> bool:
    """Is a journaled request of this service and action the integration's activity?"""
    spec = SERVICES.get(service or "")
    return spec is not None and action in spec.activity_actions


def var_kinds() -> dict[str, tuple[str, Callable[..., Any]]]:
    """Scenario variable kind → (the service declaring it, its function)."""
    out: dict[str, tuple[str, Callable[..., Any]]] = {}
    for name, spec in SERVICES.items():
        for kind, fn in spec.resolved("var_kinds").items():
            out[kind] = (name, fn)
    return out


def raw_request_parser(service: str | None) -> RawRequestParser | None:
    spec = SERVICES.get(service or "")
    return spec.resolved("parse_raw_request") if spec is not None else None


def handle_class(service: str) -> Any:
    """The testing handle class of a service (None: the generic ``MockHandle``)."""
    spec = SERVICES.get(service)
    return spec.resolved("handle") if spec is not None else None
