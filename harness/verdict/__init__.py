"""Invariants and the verdict. Importing this package registers every invariant: the generic ones
here, each service's through the registry (``mocks/<svc>/invariants.py``)."""

from harness.verdict import generic  # noqa: F401  (registration)
from harness.verdict.base import REGISTRY, Facts, Invariant, Result, event_matches
from harness.verdict.evaluate import Verdict, evaluate, settled
from mocks.registry import load_invariants

load_invariants()

__all__ = ["REGISTRY", "Facts", "Invariant", "Result", "Verdict", "evaluate", "event_matches", "settled"]
