"""The base scenario explore starts from, and the candidate scenarios it makes of it.

The base gives the target, the services, the links and the traffic; its own fault steps are
dropped. A candidate is the base plus a list of ``Fault``s, judged by the base's ``expect`` list and
by the invariants each service in use says always apply (its ``FaultSpace.expect``). Every
candidate document goes through the scenario loader ``harness run`` uses before it runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from harness.explore.faults import Fault, timeline
from harness.explore.generate import Menu
from harness.explore.space import space_of
from harness.scenario import Scenario, load_scenario_data
from harness.scenario.loader import load_document, validate, with_profile
from harness.scenario.yamlpos import relpath


@dataclass
class Base:
    path: str
    doc: dict[str, Any]          # the document with ``extends`` resolved
    scenario: Scenario
    variant: str | None = None
    skip: set[str] = field(default_factory=set)   # invariants that fail without any fault: not judged

    @classmethod
    def load(cls, path: str, variant: str | None = None) -> "Base":
        """Raises ``ScenarioError`` (one line, file:line) for a bad file."""
        doc, positions = load_document(path)
        doc.pop("extends", None)
        doc = with_profile(doc, positions, relpath(path), None)  # the candidates carry the profile's target:
        doc.pop("profile", None)                                   # inlined, so a written file is whole
        scenario = validate(doc, positions, relpath(path))
        return cls(path, doc, scenario, variant)

    @property
    def menu(self) -> Menu:
        return Menu.of(self.scenario)

    def expect(self) -> list[dict[str, Any]]:
        """The base's invariants, then those of its services it does not already name."""
        out = [e for e in self.scenario.expect if next(iter(e)) not in self.skip]
        named = {next(iter(e)) for e in out} | self.skip
        for svc in self.menu.services:
            for entry in space_of(svc).expect:
                name = next(iter(entry))
                if name not in named:
                    out.append(copy.deepcopy(entry))
                    named.add(name)
        return out

    def document(self, faults: list[Fault], seed: int, name: str | None = None) -> dict[str, Any]:
        rest = copy.deepcopy(self.doc)
        doc = {"name": name or f"{self.scenario.name}-explore", "description": rest.pop("description", ""),
               "seed": seed}
        doc.update((k, v) for k, v in rest.items() if k not in doc)
        doc["timeline"] = timeline(doc.get("timeline") or [], faults)
        doc["expect"] = self.expect()
        doc.pop("applies_to", None)  # the catalogue's filter, not this run's
        if self.variant and isinstance(doc.get("target"), dict):
            doc["target"]["variant"] = self.variant
        return doc

    def scenario_of(self, faults: list[Fault], seed: int) -> Scenario:
        """The candidate as ``harness run`` would load it (``ScenarioError`` if it is not valid)."""
        return load_scenario_data(self.document(faults, seed), f"{relpath(self.path)} + explore faults")
