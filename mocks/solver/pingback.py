"""Pingbacks: the callback the solver sends to a task's ``pingback`` URL when it is done, and the
2captcha-style registration of pingback addresses (``add_pingback`` / ``get_pingback`` /
``del_pingback``).

Wire form (protocols.md 2.6): CaptchaAI sends ``GET <url>?id=<task id>&code=<answer>``; 2captcha
documents a POST form body ``id=…&code=…`` — ``pingback_method`` switches. No signature. ``code``
carries ``ERROR_CAPTCHA_UNSOLVABLE`` for unsolvable tasks (``pingback_on_unsolvable``).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import replace

from mocks.base import Outbound
from mocks.solver.config import SolverConfig
from mocks.solver.tasks import Task
from mocks.solver.vocabulary import PINGBACK

ACTION = PINGBACK


def outbound(task: Task, code: str, cfg: SolverConfig) -> Outbound:
    fields = {"id": str(task.id), "code": code}
    match = {"id": str(task.id), "task": task.id, "code": code, "key": task.key, "method": task.method.name}
    if cfg.pingback_method == "POST":
        return Outbound(ACTION, task.pingback or "", method="POST", form=fields, timeout_s=cfg.pingback_timeout_s,
                        match=match)
    return Outbound(ACTION, task.pingback or "", method="GET", params=fields, timeout_s=cfg.pingback_timeout_s,
                    match=match)


def with_id(out: Outbound, new_id: int) -> Outbound:
    """The same callback carrying another task id (a forged ``wrong_id`` delivery)."""
    real = out.match.get("task")
    match = {**out.match, "id": str(new_id), "task": new_id, "forged_from": real}
    if out.form is not None:
        return replace(out, form={**out.form, "id": str(new_id)}, match=match)
    return replace(out, params={**out.params, "id": str(new_id)}, match=match)


def valid_url(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _origin(url: str) -> tuple[str, int | None] | None:
    try:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None


class Registry:
    """Registered pingback addresses per key. A URL is registered when a registered address is a
    prefix of it, or names the same host (and port, if the address gives one)."""

    def __init__(self) -> None:
        self._addrs: dict[str, list[str]] = {}

    def add(self, key: str, addr: str) -> None:
        addrs = self._addrs.setdefault(key, [])
        if addr not in addrs:
            addrs.append(addr)

    def remove(self, key: str, addr: str) -> None:
        if addr == "all":
            self._addrs.pop(key, None)
        elif addr in self._addrs.get(key, []):
            self._addrs[key].remove(addr)

    def list(self, key: str) -> list[str]:
        return list(self._addrs.get(key, []))

    def allows(self, key: str, url: str) -> bool:
        target = _origin(url)
        for addr in self._addrs.get(key, []):
            if url.startswith(addr):
                return True
            origin = _origin(addr)
            if origin and target and origin[0] == target[0] and origin[1] in (None, target[1]):
                return True
        return False

    def clear(self) -> None:
        self._addrs.clear()
