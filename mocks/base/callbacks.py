"""Outbound callbacks (solver pingbacks, Chat webhooks) with faults from the same rules.

A rule whose effect has ``callback`` set (``Rule.applier`` is ``Applier.CALLBACK``) applies here,
matched on the callback's service, action (e.g. ``pingback``) and params. Faults:

- ``drop``        never sent (journaled as ``dropped``);
- ``duplicate``   sent ``count`` extra times (``count + 1`` deliveries), ``spread_ms`` apart, each
                  copy after the previous one was answered; with ``concurrent: true`` all copies
                  start at once, each on its own connection, none waiting for another's answer;
- ``storm``       ``count + 1`` deliveries on their own connections, their starts spread evenly over
                  ``within_ms`` (0: all at once), none waiting for another's answer;
- ``delay``       sent after ``delay_ms``;
- ``reorder``     held back until the next callback of the service has gone out (or ``delay_ms``,
                  default 5000, passes), so it arrives after a later one;
- ``wrong_url``   sent to ``url`` instead;  ``refused``: sent to a port nobody listens on;
- anything else (``wrong_id``, ``bad_sign``, ``stale_time`` …) is a *forgery* the service
  implements in ``forge`` (it rewrites the outbound request).

Every attempt is journaled twice: a ``callback_send`` event before it leaves, and a ``callback`` event
with its outcome: delivered, http_error (status
>= 300), refused, timeout, error, dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

import aiohttp

from harness.faults import Applier, Effect
from harness.faults.rules import scaled_s
from harness.journal import kinds
from harness.ports import free_port

if TYPE_CHECKING:
    from mocks.base.service import MockContext

RESPONSE_BODY_LIMIT = 2048


@dataclass
class Outbound:
    action: str
    url: str
    method: str = "GET"
    params: dict[str, Any] = field(default_factory=dict)     # query string
    form: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    match: dict[str, Any] = field(default_factory=dict)      # extra fields rules may match on
    cid: str = ""
    response_limit: int = RESPONSE_BODY_LIMIT                # bytes of the answer kept (and journaled)


@dataclass
class Attempt:
    outcome: str
    status: int | None = None
    body: str = ""
    latency_ms: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "delivered"


Forge = Callable[[Outbound, str, Effect], Outbound]


def closed_port_url(path: str = "/") -> str:
    """A loopback URL with nothing listening (a free port from ``harness.ports``)."""
    return f"http://127.0.0.1:{free_port()}{path}"


class CallbackSender:
    def __init__(self, ctx: "MockContext", service: str, forge: Forge | None = None):
        self.ctx = ctx
        self.service = service
        self.forge = forge
        self._session: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None     # one new connection per request (bursts)
        self._cids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self._held: list[asyncio.Event] = []

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, ssl=False, force_close=False),
                auto_decompress=True)
        return self._session

    async def _fresh_client(self) -> aiohttp.ClientSession:
        if self._fresh is None or self._fresh.closed:
            self._fresh = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ssl=False, force_close=True), auto_decompress=True)
        return self._fresh

    def spawn(self, out: Outbound, **kw: Any) -> asyncio.Task:
        """Fire and forget (tracked, cancelled on close)."""
        task = asyncio.get_running_loop().create_task(self.send(out, **kw))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def send(self, out: Outbound, *, retries: int = 0, retry_on: tuple[str, ...] = ()) -> list[Attempt]:
        """Deliver one callback through the rules. Returns every attempt made (empty if dropped)."""
        out.cid = out.cid or f"cb{next(self._cids)}"
        match = {**out.params, **(out.form or {}), **(out.json if isinstance(out.json, dict) else {}),
                 **out.match, "url": out.url}
        decision = self.ctx.engine.decide(self.service, out.action, match, ref=out.cid, applier=Applier.CALLBACK)
        if decision is None:
            return await self._deliver(out, None, retries, retry_on)
        effect, rule = decision.effect, decision.rule_id
        kind = effect.callback
        if kind == "drop":
            self._journal(out, rule, Attempt("dropped"), copy=0)
            return []
        if kind == "delay":
            await asyncio.sleep(scaled_s(effect.delay_ms, self.ctx.time_scale))
        elif kind == "reorder":
            released = asyncio.Event()
            self._held.append(released)
            hold = scaled_s(effect.delay_ms if effect.delay_ms is not None else 5000, self.ctx.time_scale)
            try:
                await asyncio.wait_for(released.wait(), hold)
            except asyncio.TimeoutError:
                pass
            finally:
                if released in self._held:
                    self._held.remove(released)
        elif kind == "wrong_url":
            out = replace(out, url=effect.url or closed_port_url())
        elif kind == "refused":
            out = replace(out, url=closed_port_url())
        elif kind not in ("duplicate", "storm"):
            try:
                if self.forge is None:
                    raise ValueError(f"{self.service} cannot forge {kind!r}")
                out = self.forge(out, kind, effect)
            except ValueError as e:
                self._journal(out, rule, Attempt("error", error=str(e)), copy=0)
                return []
        if effect.delay_ms and kind not in ("delay", "reorder"):
            await asyncio.sleep(scaled_s(effect.delay_ms, self.ctx.time_scale))
        if kind == "storm" or (kind == "duplicate" and effect.concurrent):
            within = scaled_s(effect.within_ms or 0, self.ctx.time_scale)
            return await self._burst(out, rule, retries, retry_on, effect.count + 1, within)
        attempts = await self._deliver(out, rule, retries, retry_on)
        if kind == "duplicate":
            for copy in range(1, effect.count + 1):
                if effect.spread_ms:
                    await asyncio.sleep(scaled_s(effect.spread_ms, self.ctx.time_scale))
                attempts += await self._deliver(out, rule, 0, (), copy=copy)
        return attempts

    async def _burst(self, out: Outbound, rule: str | None, retries: int, retry_on: tuple[str, ...],
                     copies: int, within_s: float) -> list[Attempt]:
        """``copies`` deliveries, copy i starting ``i * within_s / (copies - 1)`` after the first, each on
        a new connection; only copy 0 is retried. Attempts come back in copy order."""
        loop = asyncio.get_running_loop()
        step = within_s / (copies - 1) if copies > 1 else 0.0
        t0 = loop.time()

        async def one(copy: int) -> list[Attempt]:
            if step:
                await asyncio.sleep(max(0.0, t0 + copy * step - loop.time()))
            return await self._deliver(out, rule, retries if copy == 0 else 0, retry_on if copy == 0 else (),
                                       copy=copy, fresh=True)

        return [a for attempts in await asyncio.gather(*(one(c) for c in range(copies))) for a in attempts]

    async def _deliver(self, out: Outbound, rule: str | None, retries: int, retry_on: tuple[str, ...],
                       copy: int = 0, fresh: bool = False) -> list[Attempt]:
        # whatever was held for reordering goes out after this one
        held, self._held = self._held, []
        attempts = []
        for attempt_no in range(retries + 1):
            # journaled before the first byte leaves: a kill mid-delivery still shows it was sent
            self.ctx.record(kinds.CALLBACK_SEND.event(service=self.service, action=out.action, cid=out.cid,
                                                      url=out.url, params=out.params, copy=copy, attempt=attempt_no))
            attempt = await self._attempt(out, fresh)
            self._journal(out, rule, attempt, copy=copy, attempt=attempt_no)
            attempts.append(attempt)
            if attempt.outcome not in retry_on:
                break
        for ev in held:
            ev.set()
        return attempts

    async def _attempt(self, out: Outbound, fresh: bool = False) -> Attempt:
        session = await (self._fresh_client() if fresh else self._client())
        t0 = time.monotonic()
        try:
            async with session.request(out.method, out.url, params=out.params or None, data=out.form,
                                       json=out.json, headers=out.headers or None,
                                       timeout=aiohttp.ClientTimeout(total=out.timeout_s)) as resp:
                body = await resp.read()
                text = body[:out.response_limit].decode("utf-8", "replace")
                outcome = "delivered" if resp.status < 300 else "http_error"
                return Attempt(outcome, resp.status, text, (time.monotonic() - t0) * 1000)
        except aiohttp.ClientConnectorError as e:
            return Attempt("refused", latency_ms=(time.monotonic() - t0) * 1000, error=str(e)[:300])
        except asyncio.TimeoutError:
            return Attempt("timeout", latency_ms=(time.monotonic() - t0) * 1000, error="timeout")
        except (aiohttp.ClientError, OSError, ValueError) as e:
            return Attempt("error", latency_ms=(time.monotonic() - t0) * 1000,
                           error=f"{type(e).__name__}: {e}"[:300])

    def _journal(self, out: Outbound, rule: str | None, a: Attempt, copy: int, attempt: int = 0) -> None:
        self.ctx.record(kinds.CALLBACK.event(service=self.service, action=out.action, cid=out.cid, url=out.url,
                                             method=out.method, params=out.params, form=out.form, json=out.json,
                                             match=out.match, rule=rule, copy=copy, attempt=attempt,
                                             outcome=a.outcome, status=a.status, latency_ms=round(a.latency_ms, 3),
                                             error=a.error, response=a.body))

    async def drain(self, timeout: float) -> int:
        """Wait (bounded) for callbacks still in flight; returns how many were left unfinished."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            return len(still)
        return 0

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for session in (self._session, self._fresh):
            if session is not None:
                await session.close()
