"""The scenario file format (YAML), as typed models. ``harness schema`` publishes their JSON Schema.

A scenario: which services (mocks) and links (proxies) exist, the target (a URL or a command), the
traffic driven at it, the fault timeline, and the invariants expected to hold.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from harness.durations import Duration
from harness.faults.rules import Rule
from harness.scenario.variables import kind_names

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
LINK = re.compile(r"^[a-z][a-z0-9_]*->[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ready(_Strict):
    path: str = "/health"
    status: int = Field(default=200, ge=100, le=599)
    timeout: Duration = 20.0


class Build(_Strict):
    """A build step run before the target starts (docs/scenarios.md#build): once per content, cached."""

    command: Union[str, list[str]] = Field(description="run in the target's cwd; ${build.dir} is the output folder")
    inputs: list[str] | None = Field(default=None, description="globs (relative to cwd) of the files whose "
                                     "contents key the cache; default: every file but hidden folders")
    timeout: Duration = 300.0

    @field_validator("command")
    @classmethod
    def _not_empty(cls, v: Union[str, list[str]]) -> Union[str, list[str]]:
        if not v or (isinstance(v, str) and not v.strip()):
            raise ValueError("must not be empty")
        return v


class Target(_Strict):
    """How to reach the integration under test: ``url``, or a ``command`` the harness starts (then
    ``${target.port}`` is a free port and ``url`` defaults to ``http://127.0.0.1:${target.port}``)."""

    url: str | None = None
    command: Union[str, list[str], None] = None
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    ready: Ready = Field(default_factory=Ready)
    stop_timeout: Duration = 5.0
    survives_restart: bool = Field(default=True, description="false for an integration that keeps its work in "
                                   "flight in memory only: a restart loses it by design, so `harness explore` "
                                   "does not stop and restart it")
    build: Annotated[Build | None, BeforeValidator(lambda v: {"command": v} if isinstance(v, (str, list)) else v),
                     WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}},
                                               Build.model_json_schema(), {"type": "null"}]})] = Field(
        default=None, description="a build step (e.g. go build -o ${build.dir}/app .), run once per content "
        "before the command starts; its output folder is ${build.dir}")
    integration: str | None = Field(default=None, description="which reference integration this is "
                                    "(a key of examples/variants.yaml), for the detection matrix")
    variant: str | None = Field(default=None, description="bug variant label, passed as ${target.variant}")

    @model_validator(mode="after")
    def _one_way(self) -> "Target":
        if self.url is None and self.command is None:
            raise ValueError("give url or command")
        if isinstance(self.command, list) and not self.command:
            raise ValueError("command: must not be empty")
        if self.build is not None and self.command is None:
            raise ValueError("build: needs a command to start (a url target is not started by the harness)")
        return self


class Link(_Strict):
    """A Toxiproxy link. ``name`` is ``from->to``; ``upstream`` defaults from the service name."""

    name: str
    upstream: str | None = Field(default=None, description="host:port for extra links (default: the service)")
    mitm: bool = Field(default=False, description="also put the mitmproxy addon on this link (HTTP faults)")

    @field_validator("name")
    @classmethod
    def _shape(cls, v: str) -> str:
        if not LINK.match(v):
            raise ValueError('expected "from->to", e.g. "integration->solver"')
        return v


class HttpRequest(_Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    path: str = "/"
    url: str | None = Field(default=None, description="absolute URL instead of target url + path")
    query: dict[str, Any] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, Any] | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


PROFILE_REQUEST = {"type": "string", "pattern": r"^\$\{profile\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_.\-]+\}$",
                   "description": "a request of the target profile: ${profile.<service>.<role>}"}


class Flow(_Strict):
    """One stream of requests to the target. ``count`` requests (or until ``duration`` ends), at
    most ``concurrency`` at once, at most ``rate`` per second, starting at ``start``."""

    name: str = Field(pattern=NAME)
    request: Annotated[HttpRequest, WithJsonSchema({"anyOf": [HttpRequest.model_json_schema(by_alias=True),
                                                              PROFILE_REQUEST]})]
    count: int | None = Field(default=None, ge=0, le=1_000_000,
                              description="requests to send (default 1; unbounded while duration lasts)")
    concurrency: int = Field(default=1, ge=1, le=1000)
    rate: float | None = Field(default=None, gt=0, le=100_000)
    start: Duration = 0.0
    duration: Duration | None = None
    timeout: Duration = 10.0
    vars: dict[str, dict[str, Any]] = Field(default_factory=dict)
    intent: str | None = Field(default=None, description="what the request should get: allow, deny …")
    ok_status: list[Annotated[int, Field(ge=100, le=599)]] | None = Field(
        default=None, description="answers locust counts as successes for this flow under `harness load` "
        "(e.g. [403] for a bad ticket; default: locust's own rule, < 400)")
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("vars")
    @classmethod
    def _vars(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        known = kind_names()
        for name, spec in v.items():
            if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in known:
                raise ValueError(f"{name}: expected one of {{{', '.join(k + ': …' for k in known)}}}")
        return v


class WaitFor(_Strict):
    where: dict[str, Any]
    count: int = Field(default=1, ge=1)
    timeout: Duration = 30.0


class ControlCall(_Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str
    json_body: Any = Field(default=None, alias="json")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Emit(_Strict):
    """Make a service send ``count`` inbound events of kind ``event`` to the integration now, their
    starts spread evenly over ``within`` (0: all at once), without waiting for the answers; e.g.
    ``{service: chat, event: Alert.RequestOverLimit}`` — a genuine alarm, signed like every webhook."""

    service: str = Field(pattern=NAME)
    event: str = Field(min_length=1, max_length=200)
    body: dict[str, Any] = Field(default_factory=dict, description="fields over the event's default body")
    count: int = Field(default=1, ge=1, le=10_000)
    within: Duration = 0.0


STEP_ACTIONS = ("add_rules", "remove_rules", "clear_rules", "cut_link", "restore_link", "stop_service",
                "start_service", "set_config", "control", "emit", "wait_for", "stop_target", "start_target",
                "note")


class Step(_Strict):
    """A timeline entry: when (``at`` a run time, or ``after`` the first journal event matching a
    filter, plus an optional ``delay``) and exactly one action."""

    at: Duration | None = None
    after: dict[str, Any] | None = None
    delay: Duration = 0.0
    add_rules: list[Rule] | None = None
    remove_rules: list[str] | None = None
    clear_rules: bool | None = None
    cut_link: str | None = None
    restore_link: str | None = None
    stop_service: str | None = None
    start_service: str | None = None
    set_config: dict[str, dict[str, Any]] | None = None
    control: ControlCall | None = None
    emit: Emit | None = None
    wait_for: WaitFor | None = None
    stop_target: bool | None = None
    start_target: bool | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _one_action(self) -> "Step":
        given = [a for a in STEP_ACTIONS if getattr(self, a) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one action of {', '.join(STEP_ACTIONS)} (got {len(given)})")
        if self.at is not None and self.after is not None:
            raise ValueError("give at or after, not both")
        return self

    @property
    def action(self) -> str:
        return next(a for a in STEP_ACTIONS if getattr(self, a) is not None)


class Scenario(_Strict):
    name: str = Field(pattern=NAME)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    services: dict[str, dict[str, Any]] = Field(default_factory=dict)
    tls: list[str] = Field(default_factory=list, description="services served over https with a local CA; the "
                           "target gets it in SSL_CERT_FILE, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS and ${run.tls_ca}")
    links: list[Annotated[Link, BeforeValidator(lambda v: {"name": v} if isinstance(v, str) else v),
                          WithJsonSchema({"anyOf": [{"type": "string", "pattern": LINK.pattern},
                                                    Link.model_json_schema()]})]] = Field(
        default_factory=list, description='Toxiproxy links, "from->to" or {name, upstream}')
    target: Target | None = None
    traffic: list[Flow] = Field(default_factory=list)
    timeline: list[Step] = Field(default_factory=list)
    expect: list[dict[str, Any]] = Field(default_factory=list)
    applies_to: list[str] = Field(default_factory=list, description="target variants this scenario is for")
    settle: Duration = Field(default=0.0, description="extra wait after traffic and timeline")
    max_duration: Duration = Field(default=300.0, description="hard cap on the run")
    extends: Union[str, list[str], None] = None
    profile: str | None = Field(default=None, description="a target profile file (docs/profiles.md): its "
                                "target replaces this one, its parts fill ${profile.<service>.<role>}")
    ports: dict[str, Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=dict, description="fixed ports for mocks (service → port), for an integration that runs "
        "already and reads the mocks' URLs from its own configuration; default: a free port per run")

    @field_validator("expect")
    @classmethod
    def _expect(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in v:
            if len(item) != 1:
                raise ValueError("each expectation is one invariant name with its parameters")
        return v
