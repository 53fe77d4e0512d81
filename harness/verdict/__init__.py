"""Invariants and the verdict. Importing this package registers every invariant: the generic ones
here, each service's through the registry (``mocks/<svc>/invariants.py``), also of a service
registered later."""

from harness.verdict import calls, generic, inbound  # noqa: F401  (registration)
from harness.verdict.base import (REGISTRY, Facts, Invariant, Result, event_matches, invariant_service,
                                  register_invariants)
from harness.verdict.evaluate import Verdict, evaluate, settled, waits
from mocks.registry import SERVICES, Service, on_register


def _register_service(spec: Service) -> None:
    register_invariants(spec.resolved("invariants"), spec.name)


for _spec in SERVICES.values():
    _register_service(_spec)
on_register(_register_service)

__all__ = ["REGISTRY", "Facts", "Invariant", "Result", "Verdict", "evaluate", "event_matches", "invariant_service",
           "settled", "waits"]
