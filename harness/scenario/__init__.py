"""Scenario files: the format (model), YAML loading with positions, validation, discovery."""

from harness.scenario.loader import discover, is_partial, load_scenario, load_scenario_data
from harness.scenario.model import Flow, Scenario, Step, Target
from harness.scenario.yamlpos import ScenarioError

__all__ = ["Flow", "Scenario", "ScenarioError", "Step", "Target", "discover", "is_partial", "load_scenario",
           "load_scenario_data"]
