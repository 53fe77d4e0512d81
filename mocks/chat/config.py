"""Configuration of the Tencent Chat mock (readable / settable at ``{control}/chat/config``).

Defaults are documented field by field; docs/chat.md says which are facts and which are guesses.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mocks.chat.errors import CODES

# The key printed in tls-sig-api-v2's own example (TLSSigAPIv2.main) — a well-known test key.
EXAMPLE_KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"

# Documented: openim/sendmsg 200/s (trtc.io/zh/document/34919); batchsendmsg 200/s matches the
# Alert.RequestOverLimit example (trtc.io/document/60256). The others are UNCONFIRMED.
DEFAULT_QPS = {
    "openim/sendmsg": 200,
    "openim/batchsendmsg": 200,
    "im_open_login_svc/account_import": 100,
    "im_open_login_svc/multiaccount_import": 100,
    "group_open_http_svc/send_group_msg": 200,
    "group_open_http_svc/create_group": 200,
}

_COMMAND_KEY = re.compile(r"^[A-Za-z0-9_]+/[A-Za-z0-9_]+$")
_CALLBACK = re.compile(r"^[A-Za-z][A-Za-z0-9]*\.[A-Za-z0-9_.]+$")


class ChatConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sdkappid: int = Field(1400000000, ge=1, description="the app's SDKAppID")
    secret_key: str = Field(EXAMPLE_KEY, min_length=1, description="UserSig key (console 'key')")
    admin_identifier: str = Field("administrator", min_length=1, description="the app administrator")
    other_admins: list[str] = Field(default_factory=list, description="more admin identifiers")
    # --- webhooks ------------------------------------------------------------------------------
    webhook_url: str | None = Field(None, description="the app's callback URL; None = no callbacks")
    webhook_token: str | None = Field(None, description="callback auth token; when set, Sign+RequestTime")
    webhook_timeout_s: float = Field(2.0, gt=0, le=120, description="real: 2 s")
    enabled_callbacks: list[str] = Field(
        default_factory=lambda: ["Alert.RequestOverLimit"],
        description="callbacks switched on in the 'console'; Alert.RequestOverLimit is on by default")
    before_send_on_failure: Literal["deliver", "reject"] = Field(
        "deliver", description="before-send callback timed out / failed: real default is deliver")
    after_callback_retries_on_timeout: int = Field(
        0, ge=0, le=5, description="after-event callbacks: real default is no retry (console option)")
    forged_sdkappid: int | None = Field(None, description="SdkAppid sent by wrong_sdkappid; None = sdkappid+1")
    stale_time_s: int = Field(300, ge=1, description="how old RequestTime is under the stale_time forgery")
    # --- request-rate limits -------------------------------------------------------------------
    qps_limits: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_QPS),
                                       description="'service/command' -> max requests per 1 s window")
    default_qps_limit: int | None = Field(200, ge=1, description="commands not in qps_limits; None = no limit")
    app_qps_limit: int | None = Field(None, ge=1, description="all commands together (60011); None = off")
    alarm_threshold: float = Field(0.8, gt=0, le=10, description="Alert.RequestOverLimit above this share")
    alarm_interval_s: float = Field(60.0, ge=0, description="min seconds between alarms per command (UNCONFIRMED)")
    alarm_aggregate_s: float = Field(0.0, ge=0, le=600,
                                     description="wait this long after crossing and report the peak rate")
    # --- messages ------------------------------------------------------------------------------
    c2c_dedup_window_s: float = Field(1.0, ge=0, description="sendmsg/batchsendmsg: same MsgRandom within")
    group_dedup_window_s: float = Field(300.0, ge=0, description="send_group_msg: same Random within (5 min)")
    require_accounts: bool = Field(False, description="To_Account must have been imported (90012)")
    require_groups: bool = Field(False, description="GroupId must have been created (10010)")
    error_codes: dict[str, int] = Field(default_factory=dict,
                                        description="override codes by name, e.g. {'sig_expired': 70052}")
    request_id: bool = Field(True, description="add RequestId to REST answers")

    @field_validator("webhook_url", "webhook_token", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        return None if v == "" else v

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/?#]+", v):
            raise ValueError("expected an http:// or https:// URL")
        return v

    @field_validator("qps_limits")
    @classmethod
    def _limits(cls, v: dict[str, int]) -> dict[str, int]:
        for key, limit in v.items():
            if not _COMMAND_KEY.match(key):
                raise ValueError(f"{key!r}: expected 'servicename/command'")
            if limit < 1:
                raise ValueError(f"{key!r}: limit must be >= 1")
        return v

    @field_validator("enabled_callbacks")
    @classmethod
    def _callbacks(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _CALLBACK.match(name):
                raise ValueError(f"{name!r}: expected a CallbackCommand like 'C2C.CallbackBeforeSendMsg'")
        return v

    @field_validator("error_codes")
    @classmethod
    def _codes(cls, v: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(v) - set(CODES))
        if unknown:
            raise ValueError(f"unknown error name(s) {', '.join(unknown)}; known: {', '.join(CODES)}")
        return v

    @property
    def admins(self) -> set[str]:
        return {self.admin_identifier, *self.other_admins}

    def limit_for(self, command_key: str) -> int | None:
        return self.qps_limits.get(command_key, self.default_qps_limit)

    def callback_on(self, command: str) -> bool:
        return self.webhook_url is not None and command in self.enabled_callbacks
