"""Where the scenario catalogue and the reference integrations are, in a checkout or an installed wheel.

The wheel carries ``scenarios/`` and ``examples/`` under ``harness/bundled/`` (pyproject.toml,
``force-include``), laid out as in the checkout, so a target's ``command: python examples/…`` runs
from either root. ``root()`` is that folder: the bundled copy when installed, else the checkout.
Commands take a scenario path as given when it exists, else relative to the root, so
``harness run scenarios/captcha/internal-error-fails-open.yaml`` works from any directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
BUNDLED = PACKAGE / "bundled"
CHECKOUT = PACKAGE.parent


def root() -> Path | None:
    """The folder holding ``scenarios/`` and ``examples/``; None when neither copy is there."""
    if (BUNDLED / "scenarios").is_dir():
        return BUNDLED
    if (CHECKOUT / "scenarios").is_dir() and (CHECKOUT / "pyproject.toml").is_file():
        return CHECKOUT
    return None


def checkout() -> Path | None:
    """The project checkout this code runs from (an editable install or ``python -m harness``)."""
    return CHECKOUT if (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "harness").is_dir() else None


def scenarios_dir() -> str:
    """``scenarios`` in the working directory when there is one (the user's own), else the catalogue."""
    if os.path.isdir("scenarios"):
        return "scenarios"
    base = root()
    return str(base / "scenarios") if base is not None else "scenarios"


def variants_file() -> str:
    local = os.path.join("examples", "variants.yaml")
    base = root()
    return local if os.path.isfile(local) or base is None else str(base / "examples" / "variants.yaml")


def resolve(paths: list[str]) -> list[str]:
    """Each path as given when it exists, else the same path under the catalogue root (when there)."""
    base = root()
    out = []
    for p in paths:
        if not os.path.exists(p) and base is not None and not os.path.isabs(p) and (base / p).exists():
            p = str(base / p)
        out.append(p)
    return out
