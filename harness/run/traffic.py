"""The traffic driver: HTTP requests to the target built from flow templates, journaled with what
the target answered (``driver`` events: flow, n, status, latency, the vars it carried)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Callable

import aiohttp
import orjson
from faker import Faker

from harness.durations import parse_duration
from harness.run.driver_event import driver_event
from harness.run.templates import render
from harness.scenario.model import Flow

BODY_LIMIT = 2048


class VarMaker:
    """Builds per-request variables. Seeded, so a replay sends the same data."""

    def __init__(self, seed: int, control_url: str, session: aiohttp.ClientSession, captcha: dict[str, Any]):
        self.rng = random.Random(seed)
        self.faker = Faker()
        self.faker.seed_instance(seed)
        self.control_url = control_url
        self.session = session
        self.captcha = captcha  # captcha mock config (appid, …) for DR tickets

    async def make(self, kind: str, spec: Any) -> Any:
        if kind == "value":
            return spec
        if kind == "choice":
            return self.rng.choice(list(spec))
        if kind == "random_hex":
            return "".join(self.rng.choice("0123456789abcdef") for _ in range(int(spec or 16)))
        if kind == "faker":
            name, args = (spec, {}) if isinstance(spec, str) else (spec.get("provider"), spec.get("args") or {})
            return getattr(self.faker, name)(**args)
        if kind == "captcha_ticket":
            return await self._issue_ticket(spec or {})
        if kind == "bad_ticket":
            return await self._bad_ticket(spec or {})
        if kind == "dr_ticket":
            return self._dr_ticket(spec or {})
        raise ValueError(f"unknown var kind {kind}")

    async def _issue_ticket(self, spec: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(self.control_url + "/captcha/tickets", json=spec) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"captcha ticket issue failed: HTTP {resp.status} {await resp.text()}")
            return await resp.json()

    async def _bad_ticket(self, spec: dict[str, Any]) -> dict[str, Any]:
        kind = spec.get("kind", "unknown")
        if kind == "wrong_randstr":
            t = await self._issue_ticket({})
            return {**t, "randstr": "@" + "".join(self.rng.choice("abcdefghjk") for _ in range(3)), "bad": kind}
        token = "t03" + "".join(self.rng.choice("0123456789abcdefABCDEF") for _ in range(40))
        return {"ticket": token, "randstr": "@abc", "appid": self._appid(), "bad": kind}

    def _appid(self) -> int:
        for key in ("captcha_app_id", "CaptchaAppId", "appid", "app_id"):
            if key in self.captcha:
                return int(self.captcha[key])
        apps = self.captcha.get("apps") or self.captcha.get("captcha_apps")
        if isinstance(apps, dict) and apps:
            return int(next(iter(apps)))
        if isinstance(apps, list) and apps and isinstance(apps[0], dict):
            first = apps[0]
            return int(first.get("CaptchaAppId") or first.get("appid") or first.get("app_id"))
        return 190000001

    def _dr_ticket(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``terror_<code>_<appid>_<unix s>``; ``valid`` says whether a correct backend should accept it."""
        right = self._appid()
        appid = spec.get("appid", right)
        if appid == "wrong":
            appid = right + 1
        age = parse_duration(spec.get("age", 0))
        max_age = parse_duration(spec.get("max_age", 300))
        prefix = spec.get("prefix", "terror")
        code = int(spec.get("code", 1001))
        ts = int(time.time() - age)
        why = []
        if int(appid) != right:
            why.append("wrong appid")
        if age > max_age:
            why.append(f"stale ({age:g}s old)")
        return {"ticket": f"{prefix}_{code}_{appid}_{ts}", "randstr": "@" + self.rng.choice("abcdefgh") * 3,
                "appid": appid, "valid": not why, "why": ", ".join(why) or "fresh, right appid"}


def _body_of(raw: bytes, content_type: str) -> Any:
    if "json" in content_type:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return raw[:BODY_LIMIT].decode("utf-8", "replace")


class Driver:
    def __init__(self, flows: list[Flow], base_ctx: dict[str, Any], record: Callable[[dict[str, Any]], Any],
                 seed: int, time_scale: float = 1.0):
        self.flows = flows
        self.base_ctx = base_ctx
        self.record = record
        self.seed = seed
        self.time_scale = time_scale
        self.sent = 0
        self.failed = 0

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            captcha_cfg = self.base_ctx.get("captcha", {}).get("config", {})
            control = self.base_ctx.get("control", {}).get("url", "")
            await asyncio.gather(*(self._flow(i, f, session, VarMaker(self.seed * 1000 + i, control, session,
                                                                       captcha_cfg))
                                   for i, f in enumerate(self.flows)))

    async def _flow(self, index: int, flow: Flow, session: aiohttp.ClientSession, vars_: VarMaker) -> None:
        if flow.start:
            await asyncio.sleep(flow.start * self.time_scale)
        t0 = time.monotonic()
        sem = asyncio.Semaphore(flow.concurrency)
        tasks: list[asyncio.Task] = []
        n = 0
        limit = flow.count if flow.count is not None else (None if flow.duration is not None else 1)
        while limit is None or n < limit:
            if flow.duration is not None and time.monotonic() - t0 >= flow.duration * self.time_scale:
                break
            if flow.rate:
                due = t0 + n / flow.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await sem.acquire()
            n += 1
            values = {name: await vars_.make(*next(iter(spec.items()))) for name, spec in flow.vars.items()}
            task = asyncio.create_task(self._one(flow, n, values, session))
            task.add_done_callback(lambda _t: sem.release())
            tasks.append(task)
        if tasks:
            await asyncio.gather(*tasks)

    async def _one(self, flow: Flow, n: int, values: dict[str, Any], session: aiohttp.ClientSession) -> None:
        ctx = {**self.base_ctx, **values, "n": n, "flow": flow.name}
        req = flow.request
        url = render(req.url, ctx) if req.url else self.base_ctx["target"]["url"] + render(req.path, ctx)
        kwargs: dict[str, Any] = {"headers": render(req.headers, ctx) or None,
                                  "params": {k: str(v) for k, v in render(req.query, ctx).items()} or None}
        if req.json_body is not None:
            kwargs["json"] = render(req.json_body, ctx)
        elif req.form is not None:
            kwargs["data"] = {k: str(v) for k, v in render(req.form, ctx).items()}
        event = driver_event(flow, n, url, values)
        start = time.monotonic()
        try:
            async with session.request(req.method, url, timeout=aiohttp.ClientTimeout(total=flow.timeout),
                                       **kwargs) as resp:
                raw = await resp.read()
                event.update(status=resp.status, response=_body_of(raw, resp.headers.get("Content-Type", "")))
        except asyncio.TimeoutError:
            event.update(status=None, error="timeout")
        except (aiohttp.ClientError, OSError) as e:
            event.update(status=None, error=f"{type(e).__name__}: {e}"[:300])
        event["latency_ms"] = round((time.monotonic() - start) * 1000, 3)
        self.sent += 1
        if event.get("status") is None or event["status"] >= 400:
            self.failed += 1
        self.record(event)
