"""Fault rules as data: ``match`` (which requests) + ``effect`` (what goes wrong) + ``schedule`` (when).

Every component that injects faults — the service mocks, the callback senders, the mitmproxy addon
and the Toxiproxy driver — takes these same rules. Parsing a rule computes once which of them
applies it (``Rule.applier``); each component asks the engine only for its own rules, so a rule is
applied in exactly one place. See ``docs/rules.md`` for the full reference.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from enum import Enum
from typing import Annotated, Any, Literal, Union

import re2
from pydantic import (BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, PrivateAttr,
                      ValidationError, ValidationInfo, WithJsonSchema, field_validator, model_validator)

from harness.durations import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Glob(_Strict):
    glob: str


class Regex(_Strict):
    regex: str


class Exact(_Strict):
    exact: Union[str, int, float, bool, None]


_PATTERN_HELP = 'expected a value, {"glob": "..."}, {"regex": "..."} or {"exact": ...}'


def to_pattern(v: Any) -> Any:
    if isinstance(v, (Glob, Regex, Exact, str, int, float, bool)):
        return v
    if isinstance(v, dict) and len(v) == 1:
        (key, arg), = v.items()
        if key == "glob" and isinstance(arg, str):
            return Glob(glob=arg)
        if key == "regex" and isinstance(arg, str):
            _compiled(arg)
            return Regex(regex=arg)
        if key == "exact" and (arg is None or isinstance(arg, (str, int, float, bool))):
            return Exact(exact=arg)
    raise ValueError(_PATTERN_HELP)


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the error is raised; RE2 would also print it to stderr


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    """Rule regexes run on RE2, in time linear in the text: a pattern like ``^(a+)+$`` cannot stall
    the event loop. What RE2 cannot do in linear time (backreferences, lookaround) is refused."""
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as e:
        why = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise ValueError(f"invalid regular expression (RE2 syntax: no backreferences or lookaround): "
                         f"{why}") from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _regex_search(pattern: str, text: str) -> bool:
    try:
        return _compiled(pattern).search(text) is not None
    except UnicodeEncodeError:  # a lone surrogate (a non-UTF-8 byte the server escaped): RE2 needs UTF-8
        return _compiled(pattern).search(_SURROGATE.sub("\ufffd", text)) is not None


_PATTERN_SCHEMA = {"anyOf": [
    {"type": ["string", "number", "boolean"]},
    {"type": "object", "properties": {"glob": {"type": "string"}}, "required": ["glob"], "additionalProperties": False},
    {"type": "object", "properties": {"regex": {"type": "string"}}, "required": ["regex"], "additionalProperties": False},
    {"type": "object", "properties": {"exact": {}}, "required": ["exact"], "additionalProperties": False},
]}

Pattern = Annotated[Any, PlainValidator(to_pattern),
                    PlainSerializer(lambda v: v.model_dump() if isinstance(v, BaseModel) else v),
                    WithJsonSchema(_PATTERN_SCHEMA)]


def pattern_matches(pattern: Pattern, value: Any) -> bool:
    """Exact for scalars, glob or regex (search) when asked for; ``value`` None never matches."""
    if value is None:
        return isinstance(pattern, Exact) and pattern.exact is None
    text = value if isinstance(value, str) else str(value)
    if isinstance(pattern, Glob):
        return fnmatch.fnmatchcase(text, pattern.glob)
    if isinstance(pattern, Regex):
        return _regex_search(pattern.regex, text)
    if isinstance(pattern, Exact):
        pattern = pattern.exact
    if isinstance(pattern, bool):
        return text.lower() in (("1", "true") if pattern else ("0", "false"))
    if isinstance(pattern, (int, float)) and not isinstance(value, str):
        return value == pattern
    return text == str(pattern)


class Match(_Strict):
    """Which calls a rule applies to. Omitted fields match everything."""

    service: Pattern | None = None
    action: Pattern | None = None
    link: Pattern | None = None
    params: dict[str, Pattern] = Field(default_factory=dict)

    def matches(self, service: str | None, action: str | None, params: dict[str, Any] | None = None,
                link: str | None = None) -> bool:
        if self.service is not None and not pattern_matches(self.service, service):
            return False
        if self.action is not None and not pattern_matches(self.action, action):
            return False
        if self.link is not None and not pattern_matches(self.link, link):
            return False
        if self.params:
            params = params or {}
            for key, pat in self.params.items():
                if not pattern_matches(pat, params.get(key)):
                    return False
        return True


CallbackFault = Literal[
    "drop", "duplicate", "storm", "delay", "reorder", "wrong_url", "wrong_id", "refused",
    "wrong_sdkappid", "bad_sign", "missing_sign", "stale_time",
]
ToxicType = Literal["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"]


class Effect(_Strict):
    """What goes wrong. Fields combine where that makes sense (``delay_ms`` + ``error``);
    ``hang`` and ``reset`` end the exchange, so they win over response-shaping fields."""

    # protocol-level answers, translated by the service into its own error shape
    error: str | None = None
    message: str | None = None
    captcha_code: int | None = None
    # raw HTTP answers
    status: int | None = Field(default=None, ge=100, le=599)
    body: Union[str, dict, list, None] = None
    headers: dict[str, str] = Field(default_factory=dict)
    content_type: str | None = None
    # transport-level
    delay_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    hang: bool = False
    reset: bool = False
    partial_body: Union[bool, int, None] = None
    # callbacks (pingbacks, webhooks)
    callback: CallbackFault | None = None
    count: int = Field(default=1, ge=1, le=1000)
    spread_ms: float = Field(default=0, ge=0, le=3_600_000)
    concurrent: bool = False
    within_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    url: str | None = None
    # mitmproxy: upstream processed the request, the client never sees the answer
    drop_response: bool = False
    duplicate_request: int | None = Field(default=None, ge=1, le=100)
    # Toxiproxy (TCP) — applied to a link, see harness/proxy
    toxic: ToxicType | None = None
    attributes: dict[str, Union[int, float]] = Field(default_factory=dict)
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(default=1.0, ge=0.0, le=1.0)
    link_down: bool = False

    @model_validator(mode="after")
    def _not_empty(self) -> "Effect":
        if not self.model_fields_set - {"message", "headers", "count", "spread_ms", "concurrent", "within_ms",
                                        "stream", "toxicity", "attributes"}:
            raise ValueError("effect does nothing: give at least one of error, captcha_code, status, body, "
                             "delay_ms, hang, reset, partial_body, callback, drop_response, "
                             "duplicate_request, toxic, link_down")
        check_callback_shape(self)
        return self

    @property
    def shapes_response(self) -> bool:
        return (self.error is not None or self.captcha_code is not None or self.status is not None
                or self.body is not None)


def check_callback_shape(effect: "Effect") -> None:
    """``concurrent`` belongs to ``duplicate`` only, ``within_ms`` to ``storm`` only; concurrent
    copies start together, so they take no ``spread_ms``."""
    if effect.concurrent and effect.callback != "duplicate":
        raise ValueError("concurrent: only for callback: duplicate")
    if effect.concurrent and effect.spread_ms:
        raise ValueError("concurrent copies start together: drop spread_ms "
                         "(or use callback: storm with within_ms)")
    if effect.within_ms is not None and effect.callback != "storm":
        raise ValueError("within_ms: only for callback: storm")
    if effect.callback == "storm" and effect.spread_ms:
        raise ValueError("storm: give within_ms, not spread_ms")


class Window(_Strict):
    """A time window relative to run start: ``start`` inclusive, ``end`` exclusive (open if omitted)."""

    start: Duration = 0.0
    end: Duration | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Window":
        if self.end is not None and self.end <= self.start:
            raise ValueError("window end must be after start")
        return self

    def contains(self, t: float) -> bool:
        return t >= self.start and (self.end is None or t < self.end)


class Schedule(_Strict):
    """When a matching call is faulted. All given conditions must hold.

    - ``after: K``   skip the first K matches;
    - ``every: k``   then fault every k-th match (k, 2k, ...);
    - ``times: N``   fault at most N times;
    - ``probability: p`` fault with probability p, rolled from (run seed, rule id, match number);
    - ``window``     only while run time is within [start, end).
    """

    times: int | None = Field(default=None, ge=1)
    after: int = Field(default=0, ge=0)
    every: int = Field(default=1, ge=1)
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    window: Window | None = None


class Applier(str, Enum):
    """The one component that applies a rule."""

    MOCK = "mock"          # the reply of the service mock receiving the request (ServiceMock)
    CALLBACK = "callback"  # the delivery of the service's outbound pingbacks / webhooks (CallbackSender)
    MITM = "mitm"          # the mitmproxy flow on a link (the addon, on its mirror of these rules)
    TOXIC = "toxic"        # a Toxiproxy toxic on a link (ToxicDriver)
    LINK = "link"          # a link's Toxiproxy proxy disabled: link_down (ToxicDriver)

    @property
    def component(self) -> str:
        return _COMPONENT[self]


_COMPONENT = {Applier.MOCK: "service mock", Applier.CALLBACK: "callback sender",
              Applier.MITM: "mitmproxy addon", Applier.TOXIC: "Toxiproxy driver (toxic)",
              Applier.LINK: "Toxiproxy driver (link down)"}
TOXIPROXY = frozenset({Applier.TOXIC, Applier.LINK})

_HTTP_FIELDS = frozenset({"error", "message", "captcha_code", "status", "body", "headers", "content_type",
                          "delay_ms", "hang", "reset"})
# the effect fields each applier carries out
APPLIER_FIELDS: dict[Applier, frozenset[str]] = {
    Applier.MOCK: _HTTP_FIELDS | {"partial_body"},
    Applier.MITM: _HTTP_FIELDS | {"drop_response", "duplicate_request"},
    Applier.CALLBACK: frozenset({"callback", "count", "spread_ms", "concurrent", "within_ms", "url", "delay_ms"}),
    Applier.TOXIC: frozenset({"toxic", "attributes", "stream", "toxicity"}),
    Applier.LINK: frozenset({"link_down"}),
}
# the fields that choose an applier on their own, whatever else the rule says
_MARKERS = (("callback", Applier.CALLBACK), ("toxic", Applier.TOXIC), ("link_down", Applier.LINK),
            ("drop_response", Applier.MITM), ("duplicate_request", Applier.MITM))


def _given(effect: Effect) -> list[str]:
    """The effect's fields that do something (a value other than the default), in declaration order."""
    out = []
    for name, info in Effect.model_fields.items():
        default = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
        value = getattr(effect, name)
        if value != default and not (default is None and value is False):  # partial_body: false
            out.append(name)
    return out


def applier_of(effect: Effect, on_link: bool) -> Applier:
    """Where a rule with this effect applies (``on_link``: the rule has ``match.link``).

    Raises ValueError, naming the field, for a combination no single applier carries out."""
    given = _given(effect)
    markers = [(f, a) for f, a in _MARKERS if f in given]
    if len({a for _, a in markers}) > 1:
        (f1, a1), (f2, a2) = markers[0], next(m for m in markers if m[1] is not markers[0][1])
        raise ValueError(f"{f1} and {f2} cannot be one rule (the {a1.component} applies {f1}, the "
                         f"{a2.component} {f2}); split them into two rules")
    if markers:
        applier, why = markers[0][1], f"{markers[0][0]} is set"
    elif on_link:
        applier, why = Applier.MITM, "match.link is set"
    else:
        applier, why = Applier.MOCK, "no match.link"
    for name in given:
        if name not in APPLIER_FIELDS[applier]:
            hint = "; on a link use the limit_data toxic" if name == "partial_body" else ""
            raise ValueError(f"{name}: the {applier.component} applies this rule ({why}) and does not "
                             f"use {name}{hint}")
    if applier is Applier.CALLBACK and on_link:
        raise ValueError("callback: callbacks are sent by the service mock on no link; remove match.link")
    return applier


def scaled_s(ms: float | None, time_scale: float) -> float:
    """Rule milliseconds (``delay_ms``, ``spread_ms`` …) → wall-clock seconds at this ``--time-scale``.
    Every applier converts through here, so a delay means the same wherever it applies."""
    return (ms or 0.0) / 1000.0 * time_scale


class Rule(_Strict):
    id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    description: str | None = None
    match: Match = Field(default_factory=Match)
    effect: Effect
    schedule: Schedule = Field(default_factory=Schedule)
    optional: bool = Field(default=False, description="a run where this rule never fires is not INCONCLUSIVE")
    _applier: Applier = PrivateAttr(default=Applier.MOCK)

    @field_validator("effect")
    @classmethod
    def _one_applier(cls, effect: Effect, info: ValidationInfo) -> Effect:
        # refused here so that the error is located at ``effect``; ``_route`` stores the applier
        match = info.data.get("match")
        if match is not None:
            applier_of(effect, match.link is not None)
        return effect

    @model_validator(mode="after")
    def _route(self) -> "Rule":
        self._applier = applier_of(self.effect, self.match.link is not None)
        return self

    @property
    def applier(self) -> Applier:
        """The component that applies this rule (computed once, when the rule is validated; a
        ``model_copy(update=...)`` of ``match.link`` or ``effect`` must be validated again)."""
        return self.__pydantic_private__["_applier"]  # not self._applier: pydantic's __getattr__ costs ~2 µs a call

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)


class RuleError(ValueError):
    """A rule document is invalid; ``str()`` is one line naming the field."""


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("function-after", "union")))
    where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    msg = first["msg"].removeprefix("Value error, ")
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {msg}{more}" if where else f"{msg}{more}"


def parse_rules(data: Any, prefix: str = "rules") -> list[Rule]:
    """Accept one rule object or a list of them (or ``{"rules": [...]}``)."""
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    items = data if isinstance(data, list) else [data]
    rules = []
    for i, item in enumerate(items):
        where = f"{prefix}[{i}]" if isinstance(data, list) else prefix
        if not isinstance(item, dict):
            raise RuleError(f"{where}: expected a rule object with match/effect/schedule")
        try:
            rules.append(Rule.model_validate(item))
        except ValidationError as e:
            raise RuleError(format_validation_error(e, where)) from None
    return rules
