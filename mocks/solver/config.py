"""The solver mock's configuration (``GET/PUT {control}/solver/config``). Every default is
documented in ``docs/solver.md``; fields marked UNCONFIRMED there are guesses made switchable."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The API keys the mock knows out of the box (32 characters, like real ones).
DEFAULT_KEY = "c0ffee00c0ffee00c0ffee00c0ffee00"
SECOND_KEY = "5ec0nd0000000000000000000000key2"


class KeyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threads: int = Field(default=5, ge=0, le=100_000, description="thread cap: tasks solving at once")
    balance: float = Field(default=10.0, description="account balance; <= 0 → ERROR_ZERO_BALANCE on submit")


def _default_keys() -> dict[str, KeyConfig]:
    return {DEFAULT_KEY: KeyConfig(), SECOND_KEY: KeyConfig(threads=1, balance=1.0)}


class TimeProfile(BaseModel):
    """How a group of tasks is solved: which tasks (all filters given must hold), then their solve
    time and how they end. The first profile a task matches applies; others get the defaults."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[int] | None = Field(default=None, description="task numbers (1 = first task of the run)")
    sitekeys: list[str] | None = Field(default=None, description="googlekey/sitekey/gt values")
    share: float = Field(default=1.0, ge=0, le=1, description="of the tasks the filters select, rolled "
                                                                "per task from the run seed")
    solve_min_s: float | None = Field(default=None, ge=0)
    solve_max_s: float | None = Field(default=None, ge=0, description="default: solve_min_s")
    outcome: Literal["solved", "unsolvable", "stalled"] | None = Field(
        default=None, description="default: as unsolvable_* decide; stalled: accepted, never finished "
                                  "(res.php: CAPCHA_NOT_READY until the TTL; the task keeps its thread)")

    @model_validator(mode="after")
    def _range(self) -> "TimeProfile":
        if None not in (self.solve_min_s, self.solve_max_s) and self.solve_max_s < self.solve_min_s:
            raise ValueError("solve_max_s must be >= solve_min_s")
        if self.solve_min_s is None and self.solve_max_s is not None:
            raise ValueError("solve_max_s needs solve_min_s")
        return self


class SolverConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: dict[str, KeyConfig] = Field(default_factory=_default_keys,
                                       description="known API keys (any length; only 32-char keys can work)")
    # solving model
    solve_distribution: Literal["uniform", "fixed", "exponential"] = "uniform"
    solve_min_s: float = Field(default=0.2, ge=0)
    solve_max_s: float = Field(default=1.5, ge=0)
    time_scale: float = Field(default=1.0, ge=0, description="multiplies solve times and TTLs "
                                                              "(on top of the host's --time-scale)")
    unsolvable_probability: float = Field(default=0.0, ge=0, le=1)
    unsolvable_sitekeys: list[str] = Field(default_factory=list,
                                           description="googlekey/sitekey/gt values that are never solved")
    unsolvable_tasks: list[int] = Field(default_factory=list,
                                        description="task numbers (1 = first task of the run) never solved")
    profiles: list[TimeProfile] = Field(default_factory=list,
                                        description="per-task solve times and endings (first match wins)")
    thread_cap_reply: Literal["ERROR_NO_SLOT_AVAILABLE", "ERROR_ZERO_BALANCE", "queue"] = "ERROR_ZERO_BALANCE"
    hcaptcha: Literal["error", "solve"] = "error"
    hcaptcha_error: str = "ERROR_SERVER_ERROR"
    task_ttl_s: float = Field(default=600.0, gt=0,
                              description="after this a task id is forgotten → ERROR_WRONG_CAPTCHA_ID")
    int_request_methods: list[str] = Field(default_factory=lambda: ["userrecaptcha"],
                                           description="methods whose JSON submit reply has an integer request")
    answer_field: Literal["result", "request", "both"] = Field(
        default="result", description="where enterprise / cloudflare answers go in JSON (plus user_agent)")
    user_agent: str = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/124.0.0.0 Safari/537.36")
    error_text: bool = Field(default=False, description="add error_text to JSON error replies")
    min_image_bytes: int = Field(default=100, ge=0)
    max_image_bytes: int = Field(default=1024 * 1024, ge=1)
    check_image_type: bool = True
    # IP ban after repeated bad keys (0 = never)
    ban_after_bad_keys: int = Field(default=0, ge=0)
    ban_s: float = Field(default=300.0, ge=0)
    ban_code: str = "IP_BANNED"
    # pingbacks
    pingback_method: Literal["GET", "POST"] = "GET"
    pingback_timeout_s: float = Field(default=10.0, gt=0)
    pingback_retries: int = Field(default=0, ge=0, le=100)
    pingback_retry_on: list[Literal["refused", "timeout", "http_error", "error"]] = Field(
        default_factory=lambda: ["refused", "timeout", "http_error", "error"])
    pingback_on_unsolvable: bool = Field(default=True, description="send code=ERROR_CAPTCHA_UNSOLVABLE")
    pingback_registration: Literal["off", "ignore", "reject"] = Field(
        default="off", description="off: any URL; ignore: unregistered URLs get no pingback; "
                                   "reject: in.php answers pingback_reject_error")
    pingback_reject_error: str = "ERROR_BAD_PARAMETERS"
    # the protected site where an integration uses a solution
    site_path: str = Field(default="/site/submit", pattern=r"^/[^?#]*$",
                           description="where the integration uses a solution (a profile's site endpoint)")
    site_method: Literal["POST", "PUT", "PATCH", "GET"] = "POST"
    site_token_field: str = Field(default="token", min_length=1, description="the field carrying the solution")
    site_task_field: str = Field(default="task", min_length=1, description="the field naming the task, if sent")
    site_reject_status: int = Field(default=403, ge=200, le=599)
    site_allow_reuse: bool = False
    site_token_ttl_s: float = Field(default=120.0, ge=0, description="0 = tokens never expire")
    use_on_mitm_links: bool = Field(
        default=False, description="also count as a use any request the integration sends through a mitm link "
                                   "(scenario `links:` with `mitm: true`) that carries a solution anywhere: query, "
                                   "form, JSON body, header or raw body (docs/profiles.md)")

    @field_validator("keys")
    @classmethod
    def _keys_not_empty(cls, v: dict[str, KeyConfig]) -> dict[str, KeyConfig]:
        if any(not k for k in v):
            raise ValueError("an API key cannot be empty")
        return v

    @model_validator(mode="after")
    def _range(self) -> "SolverConfig":
        if self.solve_max_s < self.solve_min_s:
            raise ValueError("solve_max_s must be >= solve_min_s")
        return self
