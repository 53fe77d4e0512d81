"""Scenario traffic variables for captcha-protected targets (plain synchronous code; the drivers
make the control-API calls it yields, see ``harness.scenario.variables``):

- ``captcha_ticket: {appid, evil_level, …}``: a ticket the mock issued, so it will verify it;
- ``bad_ticket: {kind}``: one the mock refuses (``wrong_randstr``: a real ticket, wrong randstr;
  anything else: a ticket it never issued);
- ``dr_ticket: {appid, age, max_age, prefix, code}``: a disaster-recovery ``terror_`` ticket;
  ``valid`` says whether a correct backend should accept it.
"""

from __future__ import annotations

import time
from typing import Any, Generator

from harness.durations import parse_duration
from harness.scenario.variables import ControlAnswer, ControlRequest, VarContext
from mocks.captcha.config import DEFAULT_APP_ID
from mocks.captcha.vocabulary import BAD_TICKET, CAPTCHA_TICKET, DR_TICKET, SERVICE

Calls = Generator[ControlRequest, ControlAnswer, dict[str, Any]]


def _issue_ticket(spec: dict[str, Any]) -> Calls:
    answer = yield ControlRequest("POST", f"/{SERVICE}/tickets", spec)
    if answer.status >= 300:
        raise RuntimeError(f"captcha ticket issue failed: HTTP {answer.status} {answer.text}")
    return answer.json()


def captcha_ticket(spec: Any, ctx: VarContext) -> Calls:
    return (yield from _issue_ticket(spec or {}))


def bad_ticket(spec: Any, ctx: VarContext) -> Calls:
    kind = (spec or {}).get("kind", "unknown")
    if kind == "wrong_randstr":
        t = yield from _issue_ticket({})
        return {**t, "randstr": "@" + "".join(ctx.rng.choice("abcdefghjk") for _ in range(3)), "bad": kind}
    token = "t03" + "".join(ctx.rng.choice("0123456789abcdefABCDEF") for _ in range(40))
    return {"ticket": token, "randstr": "@abc", "appid": app_id(ctx.config), "bad": kind}


def app_id(config: dict[str, Any]) -> int:
    """The app id tickets are for, from the captcha config in the run context."""
    for key in ("captcha_app_id", "CaptchaAppId", "appid", "app_id"):
        if key in config:
            return int(config[key])
    apps = config.get("apps") or config.get("captcha_apps")
    if isinstance(apps, dict) and apps:
        return int(next(iter(apps)))
    if isinstance(apps, list) and apps and isinstance(apps[0], dict):
        first = apps[0]
        return int(first.get("CaptchaAppId") or first.get("appid") or first.get("app_id"))
    return DEFAULT_APP_ID


def dr_ticket(spec: Any, ctx: VarContext) -> dict[str, Any]:
    """``terror_<code>_<appid>_<unix s>``; ``valid`` says whether a correct backend should accept it."""
    spec = spec or {}
    right = app_id(ctx.config)
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
    return {"ticket": f"{prefix}_{code}_{appid}_{ts}", "randstr": "@" + ctx.rng.choice("abcdefgh") * 3,
            "appid": appid, "valid": not why, "why": ", ".join(why) or "fresh, right appid"}


KINDS = {CAPTCHA_TICKET: captcha_ticket, DR_TICKET: dr_ticket, BAD_TICKET: bad_ticket}
