"""Build a fault rule from the short forms the fixtures accept.

All of these give the same rule for ``captcha_mock`` (service ``captcha`` filled in)::

    captcha_mock.add_rule({"match": {"action": "DescribeCaptchaResult"}, "effect": {"error": "InternalError"}})
    captcha_mock.add_rule(effect={"error": "InternalError"}, action="DescribeCaptchaResult")
    captcha_mock.add_rule(error="InternalError", action="DescribeCaptchaResult")
    captcha_mock.fault({"error": "InternalError"}, action="DescribeCaptchaResult")   # an effect dict

Keyword arguments: ``match`` fields (``service``, ``action``, ``params``, ``link``), ``schedule`` fields
(``after``, ``every``, ``times``, ``probability``, ``window``), ``id``, and anything else is an effect
field (``error``, ``captcha_code``, ``status``, ``delay_ms``, ``hang``, ``callback``, ``toxic`` …; see
docs/rules.md). A positional dict with ``effect`` or ``match`` is a whole rule, otherwise an effect.
"""

from __future__ import annotations

import copy
from typing import Any

from harness.faults.rules import TOXIPROXY, parse_rules

MATCH_KEYS = ("service", "action", "params", "link")
SCHEDULE_KEYS = ("after", "every", "times", "probability", "window")
RULE_KEYS = ("id", "match", "effect", "schedule")


def build_rule(spec: dict[str, Any] | None = None, *, default_service: str | None = None,
               **fields: Any) -> dict[str, Any]:
    if spec is not None and not isinstance(spec, dict):
        raise TypeError(f"expected a rule or effect dict, got {type(spec).__name__}")
    spec = copy.deepcopy(spec or {})
    is_rule = any(k in spec for k in ("effect", "match", "schedule"))
    rule: dict[str, Any] = spec if is_rule else {"effect": spec}
    rule.setdefault("match", {})
    rule.setdefault("effect", {})
    for key in ("match", "effect", "schedule"):
        if key in fields:
            given = fields.pop(key)
            if not isinstance(given, dict):
                raise TypeError(f"{key}: expected a dict, got {type(given).__name__}")
            rule[key] = {**rule.get(key, {}), **copy.deepcopy(given)}
    if "id" in fields:
        rule["id"] = fields.pop("id")
    for key in MATCH_KEYS:
        if key in fields:
            rule["match"][key] = fields.pop(key)
    for key in SCHEDULE_KEYS:
        if key in fields:
            rule.setdefault("schedule", {})[key] = fields.pop(key)
    rule["effect"].update(fields)  # what is left are effect fields
    if default_service is not None and "service" not in rule["match"] and "link" not in rule["match"]:
        rule["match"]["service"] = default_service
    return rule


def is_link_rule(rule: dict[str, Any]) -> bool:
    """Whether the Toxiproxy driver applies this (valid) rule: the links must be synced after it changes."""
    return parse_rules(rule, "rule")[0].applier in TOXIPROXY
