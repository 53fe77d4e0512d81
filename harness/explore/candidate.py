"""The base scenario explore starts from, and the candidate scenarios it makes of it.

The base gives the target, the services, the links and the traffic; its own fault steps are
dropped. A candidate is the base plus a list of ``Fault``s, judged by the base's ``expect`` list and
by the invariants each service in use says always apply (its ``FaultSpace.expect``). Every
candidate document goes through the scenario loader ``harness run`` uses before it runs.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

from harness.explore.faults import Fault, timeline
from harness.explore.generate import Menu
from harness.explore.space import space_of
from harness.scenario import Scenario, load_scenario_data
from harness.scenario.loader import load_document, validate, with_profile
from harness.scenario.yamlpos import ScenarioError, relpath


@dataclass
class Base:
    path: str
    doc: dict[str, Any]          # the document with ``extends`` resolved
    scenario: Scenario
    variant: str | None = None
    skip: set[str] = field(default_factory=set)   # invariants that fail without any fault: not judged

    @classmethod
    def load(cls, path: str, variant: str | None = None, profile: str | None = None) -> "Base":
        """A base scenario (``profile``: run it against this target profile instead). Raises
        ``ScenarioError`` (one line, file:line) for a bad file."""
        doc, positions = load_document(path)
        doc.pop("extends", None)
        return cls.of_document(path, doc, positions, variant, profile)

    @classmethod
    def from_profile(cls, path: str, variant: str | None = None) -> "Base":
        """The base for a target profile: each of its services' explore base (``FaultSpace.base``),
        driving the integration through the profile's roles."""
        from harness.scenario.profile import load_profile
        profile, _, _ = load_profile(path)
        name = relpath(path)
        doc: dict[str, Any] = {"name": f"explore-{profile.name or os.path.splitext(os.path.basename(path))[0]}",
                               "description": f"the explore bases of its services, against {name}; no fault",
                               "seed": 1, "profile": os.path.abspath(path), "services": {}}
        parts: dict[str, list[Any]] = {"traffic": [], "timeline": [], "expect": []}
        for svc in profile.services:
            base = space_of(svc).base
            if not base:
                continue
            doc["services"][svc] = copy.deepcopy(base.get("config", {}))
            for key, items in parts.items():
                items.extend(copy.deepcopy(base.get(key, [])))
        if not parts["traffic"]:
            raise ScenarioError(f"{name}: no service of this profile has an explore base "
                                f"(services: {', '.join(profile.services) or 'none'}); give a scenario as BASE")
        doc.update((k, v) for k, v in parts.items() if v)
        return cls.of_document(path, doc, {}, variant, None)

    @classmethod
    def of_document(cls, path: str, doc: dict[str, Any], positions: Any, variant: str | None,
                    profile: str | None) -> "Base":
        # the invariants its services say always apply join the base's own before the profile is
        # applied (the profile may add services), so they get the profile's defaults too (what
        # counts as let in, refused …)
        applied = with_profile(copy.deepcopy(doc), dict(positions), relpath(path), profile)
        named = {next(iter(e)) for e in applied.get("expect") or [] if isinstance(e, dict) and e}
        extra = []
        for svc in applied.get("services") or {}:
            for entry in space_of(svc).expect:
                if next(iter(entry)) not in named:
                    extra.append(copy.deepcopy(entry))
                    named.add(next(iter(entry)))
        doc = {**doc, "expect": [*(doc.get("expect") or []), *extra]} if extra else doc
        doc = with_profile(doc, positions, relpath(path), profile)  # the candidates carry the profile's target:
        doc.pop("profile", None)                                      # inlined, so a written file is whole
        scenario = validate(doc, positions, relpath(path))
        return cls(path, doc, scenario, variant)

    @property
    def menu(self) -> Menu:
        return Menu.of(self.scenario)

    def expect(self) -> list[dict[str, Any]]:
        """The base's invariants (its own, then those of its services it did not name), less the skipped."""
        return [copy.deepcopy(e) for e in self.doc.get("expect") or [] if next(iter(e)) not in self.skip]

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
