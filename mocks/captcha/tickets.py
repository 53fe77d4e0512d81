"""Tickets as if users solved the captcha, and disaster-recovery (DR) ticket parsing."""

from __future__ import annotations

import random
import re
import string
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

_ALNUM = string.ascii_letters + string.digits
_DIGITS = re.compile(r"^\d+$")


@dataclass
class Ticket:
    ticket: str
    randstr: str
    appid: int
    issued_at: float
    evil_level: int = 0
    user_ip: str | None = None
    source: str = "control"
    uses: int = 0
    verified_at: list[float] = field(default_factory=list)

    def public(self, lifetime_s: float, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        state = "used" if self.uses else ("expired" if now - self.issued_at > lifetime_s else "fresh")
        return {**asdict(self), "state": state}


class TicketStore:
    """Issued tickets, oldest forgotten first beyond ``limit``. Values come from a seeded RNG so a
    run with the same seed and the same order of issues hands out the same tickets."""

    def __init__(self, seed: int = 0, limit: int = 100_000):
        self._seed = seed
        self.limit = limit
        self.clear()

    def clear(self) -> None:
        self._rng = random.Random(f"captcha-tickets|{self._seed}")
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self.dr_seen: dict[str, int] = {}

    def issue(self, appid: int, *, evil_level: int = 0, user_ip: str | None = None, age_s: float = 0.0,
              source: str = "control") -> Ticket:
        rng = self._rng
        value = "t03" + "".join(rng.choice(_ALNUM + "-_") for _ in range(93))
        randstr = "@" + "".join(rng.choice(_ALNUM) for _ in range(3))
        t = Ticket(value, randstr, appid, time.time() - age_s, evil_level, user_ip, source)
        self._tickets[value] = t
        while len(self._tickets) > self.limit:
            self._tickets.popitem(last=False)
        return t

    def get(self, value: str) -> Ticket | None:
        return self._tickets.get(value)

    def all(self) -> list[Ticket]:
        return list(self._tickets.values())


@dataclass
class DrTicket:
    prefix: str
    error_code: int | None
    appid: int | None
    ts: int | None


def parse_dr(ticket: str, prefixes: list[str], expect_appid: int | None = None) -> DrTicket | None:
    """``<prefix><errorCode>_<CaptchaAppId>_<unix seconds>``; None if not DR-prefixed.

    Tolerates the doc sample bug with no ``_`` between appid and timestamp
    (``terror_1001_1900000011649302812``): the expected appid as a prefix wins, else the last ten
    digits are the timestamp. ``appid`` is None when no appid can be parsed.
    """
    if not ticket.startswith(tuple(prefixes)):
        return None
    prefix = next(p for p in sorted(prefixes, key=len, reverse=True) if ticket.startswith(p))
    code_s, _, rest = ticket[len(prefix):].partition("_")
    code = int(code_s) if _DIGITS.match(code_s) else None
    appid = ts = None
    parts = rest.split("_")
    if len(parts) == 2 and _DIGITS.match(parts[0]) and (_DIGITS.match(parts[1]) or not parts[1]):
        appid, ts = int(parts[0]), (int(parts[1]) if parts[1] else None)
    elif len(parts) == 1 and _DIGITS.match(parts[0]):
        digits = parts[0]
        want = str(expect_appid) if expect_appid is not None else ""
        if want and digits.startswith(want):
            appid, tail = expect_appid, digits[len(want):]
            ts = int(tail) if tail else None
        elif len(digits) > 10:
            appid, ts = int(digits[:-10]), int(digits[-10:])
        else:
            appid = int(digits)
    return DrTicket(prefix, code, appid, ts)
