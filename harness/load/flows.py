"""The locust-free part of turning flows into users: weights, class names, request building.
(Importing locust monkey-patches the process with gevent, so what can be tested without it is here.)"""

from __future__ import annotations

import re
import socket
from typing import Any
from urllib.parse import urlencode

from harness.scenario.templates import render
from harness.scenario.model import Flow


def weight_of(flow: Flow) -> int:
    if flow.count is not None:
        w: float = flow.count
    elif flow.rate and flow.duration:
        w = flow.rate * flow.duration
    elif flow.rate:
        w = flow.rate
    else:
        w = 1
    return max(1, round(w))


def class_name(flow: Flow, taken: set[str]) -> str:
    base = "Flow_" + re.sub(r"\W", "_", flow.name)
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def build_request(flow: Flow, ctx: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """URL and FastHttpSession keyword arguments for one request of ``flow``."""
    req = flow.request
    url = render(req.url, ctx) if req.url else ctx["target"]["url"] + render(req.path, ctx)
    query = {k: str(v) for k, v in render(req.query, ctx).items()}
    if query:
        url += ("&" if "?" in url else "?") + urlencode(query)
    headers = {k: str(v) for k, v in (render(req.headers, ctx) or {}).items()}
    kwargs: dict[str, Any] = {"headers": headers}
    if req.json_body is not None:
        kwargs["json"] = render(req.json_body, ctx)
    elif req.form is not None:
        kwargs["data"] = urlencode({k: str(v) for k, v in render(req.form, ctx).items()})
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/x-www-form-urlencoded"
    return url, kwargs


def unreached(error: Any) -> bool:
    """The request never connected (``requests`` wraps urllib3's NewConnectionError)."""
    return error is not None and "NewConnectionError" in f"{type(error).__name__}: {error}"


def error_text(error: Any) -> str:
    if isinstance(error, (socket.timeout, TimeoutError)) or type(error).__name__ == "Timeout":
        return "timeout"
    return f"{type(error).__name__}: {error}"[:300] if error is not None else "no answer"
