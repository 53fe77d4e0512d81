"""DescribeCaptchaResult / DescribeCaptchaMiniResult: parameter checks and the ticket verdict."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

from mocks.base.reply import refusal
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
    """``why``: which field was refused, what the mock expected and what it got (journal only)."""

    def __init__(self, code: str, message: str, why: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.why = why


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ApiError("InvalidParameterValue", f"The value of parameter `{name}` must be an integer.",
                           refusal(name, "an integer", type(value).__name__))
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise ApiError("InvalidParameterValue",
                               f"The value `{value}` of parameter `{name}` is not an integer.",
                               refusal(name, "an integer", value[:40])) from None
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ApiError("InvalidParameterValue", f"The value of parameter `{name}` must be a string.",
                       refusal(name, "a string", type(value).__name__))
    return value if isinstance(value, str) else str(value)


def check_params(action: str, params: dict[str, Any], cfg: CaptchaConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in _REQUIRED[action]:
        value = params.get(name)
        if value is None:
            raise ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.",
                           refusal(name, f"present (required by {action})", "missing"))
        out[name] = value if type(value) is kind else _coerce(name, value, kind)
    for name, kind in _OPTIONAL:
        value = params.get(name)
        if value is not None:
            out[name] = value if type(value) is kind else _coerce(name, value, kind)
    if cfg.strict_captcha_type and out["CaptchaType"] != 9:
        raise ApiError("InvalidParameterValue",
                       f"The value `{out['CaptchaType']}` of parameter `CaptchaType` is not valid (must be 9).",
                       refusal("CaptchaType", "9", str(out["CaptchaType"]), "strict_captcha_type"))
    return out


@dataclass
class TicketCheck:
    code: int
    why: str
    evil_level: int = 0
    get_time: int = 0
    submit_time: int = 0
    refused: dict[str, str] | None = None  # which field made the ticket fail (journal only)


def verify(action: str, p: dict[str, Any], cfg: CaptchaConfig, store: TicketStore,
           now: float | None = None) -> TicketCheck:
    """The CaptchaCode for validated params ``p``. Order: app credentials (100), DR tickets (21/16),
    unknown (15), app mismatch (16; mini 7), randstr (7, web only), expired (8), reused (9/104), ok (1)."""
    now = time.time() if now is None else now
    mini = action == MINI
    appid, ticket = p["CaptchaAppId"], p[TICKET_PARAM]
    key = cfg.apps.get(appid)
    if key is None:
        return TicketCheck(100, "CaptchaAppId/AppSecretKey mismatch",
                       refused=refusal("CaptchaAppId", " or ".join(map(str, cfg.apps)) or "(none configured)",
                                       str(appid), "apps in the captcha config"))
    if not hmac.compare_digest(key.encode(), p["AppSecretKey"].encode()):
        return TicketCheck(100, "CaptchaAppId/AppSecretKey mismatch",
                       refused=refusal("AppSecretKey", f"{key} (CaptchaAppId {appid}'s)", p["AppSecretKey"]))
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
        return TicketCheck(15, "unknown ticket", refused=refusal("Ticket", "a ticket the mock issued", ticket[:60]))
    get_time = int(t.issued_at) if p.get("NeedGetCaptchaTime") == 1 else 0
    base = {"get_time": get_time, "submit_time": int(t.issued_at)}
    failed: TicketCheck | None = None
    if t.appid != appid:
        failed = TicketCheck(7 if mini else 16, "ticket issued for another CaptchaAppId", **base,
                         refused=refusal("CaptchaAppId", f"{t.appid} (the ticket's)", str(appid)))
    elif not mini and p["Randstr"] != t.randstr:
        failed = TicketCheck(7, "Randstr does not match the ticket", **base,
                         refused=refusal("Randstr", f"{t.randstr} (the ticket's)", str(p["Randstr"])[:60]))
    elif now - t.issued_at > cfg.ticket_lifetime_s:
        failed = TicketCheck(8, "ticket expired", **base,
                         refused=refusal("ticket age", f"at most ticket_lifetime_s ({cfg.ticket_lifetime_s:g} s)",
                                         f"{now - t.issued_at:.0f} s"))
    if failed is not None:
        if cfg.consume_on_failure:
            t.uses += 1
            t.verified_at.append(now)
        return failed
    t.uses += 1
    t.verified_at.append(now)
    if t.uses > 1:
        return TicketCheck(cfg.reuse_code, "ticket reused", **base,
                       refused=refusal("Ticket", "a ticket not verified before", f"verified {t.uses - 1}× before"))
    return TicketCheck(1, "ok", evil_level=t.evil_level, **base)
