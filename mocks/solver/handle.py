"""The solver_mock fixture's handle: a ``MockHandle`` with the API key, tasks and keys."""

from __future__ import annotations

from typing import Any

from harness.testing.mocks import MockHandle


class SolverHandle(MockHandle):
    @property
    def api_key(self) -> str:
        """The first configured API key (threads and balance in ``config["keys"]``)."""
        return next(iter(self.config["keys"]))

    def tasks(self, state: str | None = None) -> list[dict[str, Any]]:
        params = {"state": state} if state else {}
        return self.control("GET", "tasks", **params)["tasks"]

    def keys(self) -> dict[str, Any]:
        return self.control("GET", "keys")
