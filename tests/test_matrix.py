"""The detection matrix: every reference integration variant against its scenarios.

Correct variants pass every scenario of their integration; every bug variant fails at least one,
and the invariant named for that bug in examples/variants.yaml is among the failures.
"""

import asyncio

import pytest

from harness import matrix

VARIANTS = matrix.load_variants()
CATALOGUE = matrix.catalogue()
CASES = [v for vs in VARIANTS.values() for v in vs]


@pytest.mark.parametrize("variant", CASES, ids=[f"{v.integration}-{v.name}" for v in CASES])
def test_variant_is_judged_as_expected(variant, tmp_path):
    scenarios = CATALOGUE.get(variant.integration, [])
    assert scenarios, f"no scenario targets {variant.integration}"
    outcome = asyncio.run(matrix.run_variant(variant, scenarios, str(tmp_path), concurrency=2))
    errors = [f"{c.scenario}: {c.error}" for c in outcome.cells if c.error]
    assert not errors, errors
    if variant.name == "correct":
        failing = {c.scenario: c.failed for c in outcome.cells if not c.ok}
        assert not failing, f"the correct {variant.integration} fails: {failing}"
    else:
        seen = {c.scenario: c.failed for c in outcome.cells if not c.ok}
        assert outcome.caught_in, (f"{variant.name} ({variant.bug}) is not caught by {variant.caught_by}; "
                                   f"failures seen: {seen or 'none'}")


def test_catalogue_size_and_readme_table():
    assert sum(len(v) for v in CATALOGUE.values()) >= 25
    readme = open("README.md").read()
    table = matrix.expected_table(VARIANTS, CATALOGUE)
    assert matrix.readme_with_table(readme, table) == readme, "README matrix is stale: run `harness demo --write-readme`"
