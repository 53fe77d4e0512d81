"""Which service mocks exist. A new service is one folder under ``mocks/`` and one line here."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mocks.base.service import ServiceMock

SERVICES: dict[str, str] = {
    "captcha": "mocks.captcha:CaptchaMock",
    "solver": "mocks.solver:SolverMock",
    "chat": "mocks.chat:ChatMock",
}


def available() -> dict[str, type["ServiceMock"]]:
    """The registered mocks that are importable, in registration order."""
    found = {}
    for name, target in SERVICES.items():
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and module_name.startswith(e.name):
                continue  # not built yet
            raise
        cls = getattr(module, attr, None)
        if cls is not None:
            found[name] = cls
    return found
