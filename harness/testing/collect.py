"""Scenario YAML files as pytest items.

A ``.yaml``/``.yml`` file is collected only when the user pointed pytest at it — it is (or lies under)
a path given on the command line, or under a ``--scenarios DIR`` — never through ``testpaths``, so a
project's own ``pytest`` run does not start collecting its scenario catalogue. Fragments (``_*`` files
and anything under a ``_*`` folder) and YAML that is not a scenario (no ``name`` plus
``traffic``/``timeline``/``expect``/``extends``) are skipped. One item per scenario (per variant when
``--harness-variant a,b`` names several): the test id is the scenario name, tags are markers, and a
failure shows the failing invariants with their evidence.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

SCENARIO_KEYS = ("traffic", "timeline", "expect", "extends")
ROOTS_KEY = pytest.StashKey[list[Path]]()
RUNNER_KEY = pytest.StashKey[Any]()


def scenario_roots(config: pytest.Config) -> list[Path]:
    """Paths the user named (command-line paths, ``--scenarios`` dirs), absolute."""
    if ROOTS_KEY in config.stash:
        return config.stash[ROOTS_KEY]
    base = Path(config.invocation_params.dir)
    roots = [(base / d).resolve() for d in (config.getoption("harness_scenarios") or [])]
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        for arg in config.args:
            path = arg.split("::", 1)[0]
            if path:
                roots.append((base / path).resolve())
    config.stash[ROOTS_KEY] = roots
    return roots


def _under(path: Path, roots: list[Path]) -> Path | None:
    for root in roots:
        if path == root or root in path.parents:
            return root
    return None


def looks_like_scenario(path: Path) -> bool:
    import yaml
    try:
        with open(path, "rb") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError:
        return True  # collect it, so the syntax error is reported
    except OSError:
        return False
    return isinstance(data, dict) and "name" in data and any(k in data for k in SCENARIO_KEYS)


def is_fragment(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts if path != root else (path.name,)
    return any(p.startswith(("_", ".")) for p in parts)


def collect_file(file_path: Path, parent: pytest.Collector) -> "ScenarioFile | None":
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    roots = scenario_roots(parent.config)
    root = _under(file_path.resolve(), roots) if roots else None
    if root is None or is_fragment(file_path.resolve(), root) or not looks_like_scenario(file_path):
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


def variants(config: pytest.Config) -> list[str | None]:
    raw = config.getoption("harness_variant")
    names = [v.strip() for chunk in (raw or []) for v in (chunk.split(",") if chunk.strip() else [""])
             if v.strip() or not chunk.strip()]  # --harness-variant "": the empty variant, not "not given"
    return list(dict.fromkeys(names)) or [None]


def register_marker(config: pytest.Config, name: str, doc: str) -> None:
    known = {line.split(":", 1)[0].split("(")[0].strip() for line in config.getini("markers")}
    if name not in known:
        config.addinivalue_line("markers", f"{name}: {doc}")


class ScenarioFailed(Exception):
    def __init__(self, outcome: Any):
        super().__init__(outcome.explain())
        self.outcome = outcome


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator["ScenarioItem"]:
        from harness.scenario import ScenarioError, load_scenario
        try:
            scenario = load_scenario(str(self.path), profile=profile_option(self.config))
        except ScenarioError as e:
            raise self.CollectError(str(e)) from None
        names = variants(self.config)
        for variant in names:
            name = scenario.name if len(names) == 1 else f"{scenario.name}[{variant}]"
            yield ScenarioItem.from_parent(self, name=name, scenario=scenario, variant=variant)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, variant: str | None, **kw: Any):
        super().__init__(**kw)
        self.scenario = scenario
        self.variant = variant
        self.add_marker("scenario")
        for tag in scenario.tags:
            if tag and not tag.startswith("_"):
                register_marker(self.config, tag, "scenario tag (chaos-harness)")
                self.add_marker(tag)
        if variant is not None and scenario.applies_to and variant not in scenario.applies_to:
            self.add_marker(pytest.mark.skip(reason=f"applies_to {scenario.applies_to}, not {variant}"))

    def runtest(self) -> None:
        outcome = runner_for(self.config).run(self.scenario, variant=self.variant)
        self.user_properties += [("run_id", outcome.result.run_id), ("seed", str(outcome.result.seed)),
                                 ("variant", str(outcome.summary.get("variant"))), ("report", outcome.report)]
        if not outcome.ok:
            raise ScenarioFailed(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.outcome.explain()
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"scenario: {self.name}"


def report_dir(config: pytest.Config) -> str:
    """``--harness-report-dir`` or ``<pytest basetemp>/harness-reports`` (per xdist worker)."""
    given = config.getoption("harness_report_dir")
    if given:
        return os.path.abspath(given)
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        return str(factory.getbasetemp() / "harness-reports")
    import tempfile
    return tempfile.mkdtemp(prefix="harness-reports-")


def profile_option(config: pytest.Config) -> str | None:
    path = config.getoption("harness_profile", default=None)
    return str(config.invocation_params.dir / path) if path else None


def runner_for(config: pytest.Config) -> Any:
    if RUNNER_KEY not in config.stash:
        from harness.testing.scenarios import ScenarioRunner
        config.stash[RUNNER_KEY] = ScenarioRunner(
            report_dir(config), seed=config.getoption("harness_seed"),
            time_scale=config.getoption("harness_time_scale") or 1.0,
            cwd=str(config.rootpath), base_dir=str(config.rootpath), profile=profile_option(config))
    return config.stash[RUNNER_KEY]
