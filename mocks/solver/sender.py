"""The solver's pingback sender: the shared ``CallbackSender`` (rules, faults, journaling) with its
HTTP attempt done by the lean keep-alive client for plain-http GET / form-POST pingbacks — the hot
path of a pingback storm. Anything else (https, JSON bodies) goes through aiohttp as before.
Outcomes are the same: delivered, http_error (status >= 300), refused, timeout, error."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any

from yarl import URL

from mocks.base.callbacks import RESPONSE_BODY_LIMIT, Attempt, CallbackSender, Outbound
from mocks.solver.lean_http import ConnectFailed, Incomplete, LeanClient


class PingbackSender(CallbackSender):
    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self._lean: LeanClient | None = None

    def _lean_target(self, out: Outbound) -> tuple[str, int, str, bytes | None] | None:
        if out.json is not None or out.method not in ("GET", "POST"):
            return None
        try:
            url = URL(out.url)
        except (ValueError, TypeError):
            return None
        if url.scheme != "http" or not url.raw_host or url.port is None:
            return None
        if out.params:
            url = url.extend_query({k: str(v) for k, v in out.params.items()})
        body = None
        if out.form is not None:
            body = urllib.parse.urlencode({k: str(v) for k, v in out.form.items()}).encode()
        elif out.method == "POST":
            body = b""
        return url.raw_host, url.port, url.raw_path_qs or "/", body

    async def _attempt(self, out: Outbound) -> Attempt:
        target = self._lean_target(out)
        if target is None:
            return await super()._attempt(out)
        host, port, path, body = target
        if self._lean is None:
            self._lean = LeanClient()
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(out.timeout_s):
                answer = await self._lean.request(
                    out.method, host, port, path, body,
                    "application/x-www-form-urlencoded" if out.form is not None else None, out.headers or None)
        except ConnectFailed as e:
            return Attempt("refused", latency_ms=(time.monotonic() - t0) * 1000, error=str(e)[:300])
        except TimeoutError:
            return Attempt("timeout", latency_ms=(time.monotonic() - t0) * 1000, error="timeout")
        except (Incomplete, OSError, ValueError) as e:
            return Attempt("error", latency_ms=(time.monotonic() - t0) * 1000,
                           error=f"{type(e).__name__}: {e}"[:300])
        text = answer.body[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace")
        outcome = "delivered" if answer.status < 300 else "http_error"
        return Attempt(outcome, answer.status, text, (time.monotonic() - t0) * 1000)

    async def close(self) -> None:
        await super().close()
        if self._lean is not None:
            self._lean.close()
            self._lean = None
