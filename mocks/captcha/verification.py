"""DescribeCaptchaResult / DescribeCaptchaMiniResult: parameter checks and the ticket verdict."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

from mocks.captcha.config import CaptchaConfig
from mocks.captcha.tickets import TicketStore, parse_dr
from mocks.captcha.vocabulary import MINI, TICKET_PARAM, WEB
from mocks.captcha.vocabulary import VERIFY_ACTIONS as ACTIONS

_REQUIRED: dict[str, list[tuple[str, type]]] = {
    WEB: [("CaptchaType", int), (TICKET_PARAM, str), ("UserIp", str), ("Randstr", str), ("CaptchaAppId", int),
          ("AppSecretKey", str)],
    MINI: [("CaptchaType", int), (TICKET_PARAM, str), ("UserIp", str), ("CaptchaAppId", int), ("AppSecretKey", str)],
}
_OPTIONAL: list[tuple[str, type]] = [("BusinessId", int), ("SceneId", int), ("MacAddress", str), ("Imei", str),
                                     ("NeedGetCaptchaTime", int)]


class ApiError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ApiError("InvalidParameterValue", f"The value of parameter `{name}` must be an integer.")
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise ApiError("InvalidParameterValue",
                               f"The value `{value}` of parameter `{name}` is not an integer.") from None
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ApiError("InvalidParameterValue", f"The value of parameter `{name}` must be a string.")
    return value if isinstance(value, str) else str(value)


def check_params(action: str, params: dict[str, Any], cfg: CaptchaConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in _REQUIRED[action]:
        if params.get(name) is None:
            raise ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.")
        out[name] = _coerce(name, params[name], kind)
    for name, kind in _OPTIONAL:
        if params.get(name) is not None:
            out[name] = _coerce(name, params[name], kind)
    if cfg.strict_captcha_type and out["CaptchaType"] != 9:
        raise ApiError("InvalidParameterValue",
                       f"The value `{out['CaptchaType']}` of parameter `CaptchaType` is not valid (must be 9).")
    return out


@dataclass
class TicketCheck:
    code: int
    why: str
    evil_level: int = 0
    get_time: int = 0
    submit_time: int = 0


def verify(action: str, p: dict[str, Any], cfg: CaptchaConfig, store: TicketStore,
           now: float | None = None) -> TicketCheck:
    """The CaptchaCode for validated params ``p``. Order: app credentials (100), DR tickets (21/16),
    unknown (15), app mismatch (16; mini 7), randstr (7, web only), expired (8), reused (9/104), ok (1)."""
    now = time.time() if now is None else now
    mini = action == MINI
    appid, ticket = p["CaptchaAppId"], p[TICKET_PARAM]
    key = cfg.apps.get(appid)
    if key is None or not hmac.compare_digest(key.encode(), p["AppSecretKey"].encode()):
        return TicketCheck(100, "CaptchaAppId/AppSecretKey mismatch")
    dr = parse_dr(ticket, cfg.dr_prefixes, appid)
    if dr is not None:
        submit = dr.ts or 0
        if dr.appid is None:
            return TicketCheck(cfg.dr_unparsable_code, "DR ticket without a parsable CaptchaAppId", submit_time=submit)
        if dr.appid != appid:
            return TicketCheck(cfg.dr_appid_mismatch_code, "DR ticket for another CaptchaAppId", submit_time=submit)
        if cfg.dr_max_age_s is not None and dr.ts is not None and now - dr.ts > cfg.dr_max_age_s:
            return TicketCheck(8, "DR ticket too old", submit_time=submit)
        if cfg.dr_single_use:
            seen = store.dr_seen.get(ticket, 0)
            store.dr_seen[ticket] = seen + 1
            if seen:
                return TicketCheck(cfg.reuse_code, "DR ticket reused", submit_time=submit)
        return TicketCheck(cfg.dr_code, "disaster-recovery ticket", submit_time=submit)
    t = store.get(ticket)
    if t is None:
        return TicketCheck(15, "unknown ticket")
    get_time = int(t.issued_at) if p.get("NeedGetCaptchaTime") == 1 else 0
    base = {"get_time": get_time, "submit_time": int(t.issued_at)}
    failed: TicketCheck | None = None
    if t.appid != appid:
        failed = TicketCheck(7 if mini else 16, "ticket issued for another CaptchaAppId", **base)
    elif not mini and p["Randstr"] != t.randstr:
        failed = TicketCheck(7, "Randstr does not match the ticket", **base)
    elif now - t.issued_at > cfg.ticket_lifetime_s:
        failed = TicketCheck(8, "ticket expired", **base)
    if failed is not None:
        if cfg.consume_on_failure:
            t.uses += 1
            t.verified_at.append(now)
        return failed
    t.uses += 1
    t.verified_at.append(now)
    if t.uses > 1:
        return TicketCheck(cfg.reuse_code, "ticket reused", **base)
    return TicketCheck(1, "ok", evil_level=t.evil_level, **base)
