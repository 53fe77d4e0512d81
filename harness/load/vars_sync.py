"""The traffic driver's ``vars`` kinds (``harness.scenario.variables``) from gevent code: the same
seeded ticket, DR-ticket, faker and choice logic, with the control-API calls some kinds make done by
plain (gevent-cooperative) ``requests`` calls, without an asyncio loop in locust's process.
"""

from __future__ import annotations

from typing import Any

import requests

from harness.scenario.variables import ControlAnswer, ControlRequest, VarMaker, run_blocking


class SyncVarMaker:
    def __init__(self, seed: int, control_url: str, session: requests.Session, configs: dict[str, Any],
                 timeout: float = 10.0):
        """``configs``: each service's config (``harness.scenario.variables.service_configs(run_ctx)``)."""
        self.maker = VarMaker(seed, configs)
        self.control_url = control_url
        self.session = session
        self.timeout = timeout

    def _call(self, request: ControlRequest) -> ControlAnswer:
        resp = self.session.request(request.method, self.control_url + request.path, json=request.json,
                                    timeout=self.timeout)
        return ControlAnswer(resp.status_code, resp.text)

    def make(self, kind: str, spec: Any) -> Any:
        return run_blocking(self.maker.start(kind, spec), self._call)

    def values(self, specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {name: self.make(*next(iter(spec.items()))) for name, spec in specs.items()}
