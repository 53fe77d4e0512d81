"""The one fault language: rules (match + effect + schedule) and the seeded engine deciding them."""

from harness.faults.engine import Decision, RuleEngine
from harness.faults.rules import Applier, Effect, Match, Rule, Schedule, parse_rules

__all__ = ["Applier", "Decision", "Effect", "Match", "Rule", "RuleEngine", "Schedule", "parse_rules"]
