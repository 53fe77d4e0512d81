"""The traffic driver's ``vars`` kinds (``harness.run.traffic.VarMaker``) from gevent code.

``VarMaker.make`` is a coroutine whose only awaits are the captcha control API calls it makes
through an aiohttp-like session. Given a session whose calls are plain (gevent-cooperative)
``requests`` calls, the coroutine never suspends, so it runs to completion on its first step: the
same ticket, DR-ticket, faker and choice logic, without an asyncio loop in locust's process.
"""

from __future__ import annotations

from typing import Any, Callable, Coroutine

import requests

from harness.run.traffic import VarMaker


class _Response:
    def __init__(self, resp: requests.Response):
        self._resp = resp
        self.status = resp.status_code

    async def text(self) -> str:
        return self._resp.text

    async def json(self) -> Any:
        return self._resp.json()


class _Call:
    def __init__(self, fn: Callable[[], requests.Response]):
        self.fn = fn

    async def __aenter__(self) -> _Response:
        return _Response(self.fn())

    async def __aexit__(self, *exc: Any) -> bool:
        return False


class SyncSession:
    """The part of ``aiohttp.ClientSession`` that ``VarMaker`` uses, over a ``requests.Session``."""

    def __init__(self, session: requests.Session, timeout: float = 10.0):
        self.session = session
        self.timeout = timeout

    def post(self, url: str, json: Any = None, **_: Any) -> _Call:
        return _Call(lambda: self.session.post(url, json=json, timeout=self.timeout))

    def get(self, url: str, **_: Any) -> _Call:
        return _Call(lambda: self.session.get(url, timeout=self.timeout))


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never awaits a real event-loop future."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a var maker waited on an asyncio future; it cannot run under locust")


class SyncVarMaker:
    def __init__(self, seed: int, control_url: str, session: requests.Session, captcha: dict[str, Any]):
        self.maker = VarMaker(seed, control_url, SyncSession(session), captcha)  # type: ignore[arg-type]

    def make(self, kind: str, spec: Any) -> Any:
        return run_sync(self.maker.make(kind, spec))

    def values(self, specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {name: self.make(*next(iter(spec.items()))) for name, spec in specs.items()}
