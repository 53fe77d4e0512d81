"""Paths that work from any directory: a relative ``target.cwd`` is relative to the file that sets it
(through ``extends`` too, also for pytest's in-memory scenarios), and a catalogue path that does not
exist here is found in the catalogue shipped with the harness."""

from __future__ import annotations

import os

from harness import catalogue
from harness.scenario import load_scenario
from harness.scenario.loader import resolve_extends

FRAGMENT = "services: {solver: {}}\ntarget:\n  command: python app.py\n  cwd: ../app\n"


def test_relative_cwd_is_relative_to_the_file_that_sets_it(tmp_path, monkeypatch):
    (tmp_path / "shared").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "shared" / "_target.yaml").write_text(FRAGMENT)
    (tmp_path / "suite" / "deep").mkdir(parents=True)
    sc_file = tmp_path / "suite" / "deep" / "s.yaml"
    sc_file.write_text("name: s\nextends: ../../shared/_target.yaml\n")
    elsewhere = tmp_path / "suite"
    monkeypatch.chdir(elsewhere)  # not the scenario's folder, not the fragment's
    assert load_scenario(os.path.relpath(sc_file)).target.cwd == str(tmp_path / "app")
    data = resolve_extends({"name": "d", "extends": "../shared/_target.yaml"}, str(elsewhere))
    assert data["target"]["cwd"] == str(tmp_path / "app")
    (tmp_path / "own.yaml").write_text("name: o\ntarget: {command: python x.py, cwd: /opt/x}\n")
    assert load_scenario(str(tmp_path / "own.yaml")).target.cwd == "/opt/x"  # absolute stays


def test_the_shipped_targets_run_from_the_folder_holding_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = catalogue.root()
    assert root is not None and (root / "examples" / "captcha_backend" / "app.py").is_file()
    found, = catalogue.resolve(["scenarios/captcha/internal-error-fails-open.yaml"])
    assert found == str(root / "scenarios" / "captcha" / "internal-error-fails-open.yaml")
    assert load_scenario(found).target.cwd == str(root)
    assert catalogue.scenarios_dir() == str(root / "scenarios")  # no ./scenarios here
    (tmp_path / "scenarios").mkdir()
    assert catalogue.scenarios_dir() == "scenarios"  # the user's own wins
    assert catalogue.resolve(["missing.yaml"]) == ["missing.yaml"]  # not found anywhere: as given
