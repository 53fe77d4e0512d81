"""What a service offers ``harness explore``: the faults that make sense for it and the invariants
that apply whenever it runs. Each service declares one in ``mocks/<svc>/explore.py`` (its registry
entry's ``explore``); the core reads it through ``spaces()`` and never names a service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mocks.registry import SERVICES


@dataclass(frozen=True)
class FaultSpace:
    #: the integration's requests to fault (``match.action``); None: any request of the service
    actions: tuple[str | None, ...] = (None,)
    #: protocol errors a correct integration must survive (``effect.error``: transient, server-side),
    #: on any of its actions …
    errors: tuple[str, ...] = ()
    #: … and on one action only (the real service answers it there alone, e.g. a solver's "no slot"
    #: to a submit, never to a poll)
    action_errors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: other protocol answers worth trying (effect fields, e.g. ``{"captcha_code": 26}``)
    replies: tuple[dict[str, Any], ...] = ()
    #: forged callbacks the service can send (``effect.callback``: ``wrong_id``, ``bad_sign`` …)
    forgeries: tuple[str, ...] = ()
    #: a degraded service, not an error (name → a patch of the mock's config, set at a time for the rest
    #: of the run): e.g. a solver that solves slowly today. A correct integration must ride it out.
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: invariants that apply whenever the service runs: ``expect:`` entries with their parameters
    expect: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    #: the base ``harness explore PROFILE`` starts from: scenario parts (``config``: the service's mock
    #: config; ``traffic``, ``timeline``, ``expect``) that drive any integration through the profile's roles
    #: (``${profile.<service>.<role>}``), with no fault
    base: dict[str, Any] = field(default_factory=dict)


NONE = FaultSpace(actions=())


def space_of(service: str) -> FaultSpace:
    """The service's space (transport faults only when it declares none)."""
    spec = SERVICES.get(service)
    return (spec.resolved("explore") if spec is not None else None) or NONE


def calls_back(service: str) -> bool:
    spec = SERVICES.get(service)
    return bool(spec is not None and spec.calls_back)
