"""The ``driver`` journal event, built in one place for both drivers: the asyncio traffic driver
(``run/traffic.py``) and the locust users (``load/users.py``). The caller adds what came back
(``status`` and ``response``, or ``error``; ``latency_ms``) before writing it."""

from __future__ import annotations

from typing import Any

from harness.journal import kinds
from harness.scenario.model import Flow


def driver_event(flow: Flow, n: int, url: str, values: dict[str, Any], **more: Any) -> dict[str, Any]:
    return kinds.DRIVER.event(flow=flow.name, n=n, method=flow.request.method, url=url, vars=values,
                              var_kinds={k: next(iter(s)) for k, s in flow.vars.items()},
                              intent=flow.intent, labels=flow.labels or None, **more)
