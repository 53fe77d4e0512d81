"""Invariants and the verdict. Importing this package registers every invariant."""

from harness.verdict import calls, captcha, chat, generic, inbound, solutions  # noqa: F401  (registration)
from harness.verdict.base import REGISTRY, Facts, Invariant, Result, event_matches
from harness.verdict.evaluate import Verdict, evaluate, settled

__all__ = ["REGISTRY", "Facts", "Invariant", "Result", "Verdict", "evaluate", "event_matches", "settled"]
