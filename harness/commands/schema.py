"""``harness schema``: the JSON Schema of scenario files (for editors and CI linting)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def scenario_schema() -> dict[str, Any]:
    from harness.scenario.model import Scenario
    from harness.verdict import REGISTRY
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "chaos-harness scenario"
    expect_item = {"type": "object", "minProperties": 1, "maxProperties": 1, "properties": {}}
    for name, inv in sorted(REGISTRY.items()):
        params = inv.params.model_json_schema()
        params["description"] = inv.doc
        schema.setdefault("$defs", {}).update(params.pop("$defs", {}))
        expect_item["properties"][name] = {"anyOf": [params, {"type": "null"}]}
    expect_item["additionalProperties"] = False
    schema["properties"]["expect"] = {"type": "array", "items": expect_item}
    return schema


def main(args: argparse.Namespace) -> int:
    print(json.dumps(scenario_schema(), indent=1))
    return 0
