"""Configuration of the Tencent Captcha mock. Readable / settable at ``GET|PUT {control}/captcha/config``.

Everything the real service does not document (how disaster-recovery tickets age, whether a failed
verification burns the ticket, the legacy reuse code) is a field here, with the documented or most
likely behaviour as the default. See ``docs/captcha.md``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

DEFAULT_SECRET_ID = "AKIDchaosHarnessCaptchaMock000000001"
DEFAULT_SECRET_KEY = "chaosHarnessMockSecretKey0000001"
DEFAULT_APP_ID = 190000001
DEFAULT_APP_SECRET_KEY = "chaosHarnessAppSecretKey00000001"
SECOND_APP_ID = 190000002
SECOND_APP_SECRET_KEY = "chaosHarnessAppSecretKey00000002"


class CaptchaConfig(BaseModel):
    # --- TencentCloud API credentials (TC3-HMAC-SHA256) -------------------------------------
    secret_keys: dict[str, str] = Field(
        default_factory=lambda: {DEFAULT_SECRET_ID: DEFAULT_SECRET_KEY},
        description="SecretId -> SecretKey accepted by the API signature check")
    verify_signature: bool = Field(True, description="false = accept any Authorization (still parsed)")
    signature_skew_s: float = Field(300, ge=0, description="max |server time - X-TC-Timestamp|")
    signature_sdk_endpoint: bool = Field(
        True, description="also accept what the official SDKs sign when pointed at a local endpoint: credential "
        "scope service = the Host's first label (Node.js, Java: `127`), signed host without its :port (Node.js); "
        "false = only the gateway's rules (service captcha, host as sent)")
    api_version: str = Field("2019-07-22", description="the only X-TC-Version accepted")
    # --- captcha apps --------------------------------------------------------------------------
    apps: dict[int, str] = Field(
        default_factory=lambda: {DEFAULT_APP_ID: DEFAULT_APP_SECRET_KEY, SECOND_APP_ID: SECOND_APP_SECRET_KEY},
        description="CaptchaAppId -> AppSecretKey")
    # --- ticket lifecycle ----------------------------------------------------------------------
    ticket_lifetime_s: float = Field(300, gt=0, description="a ticket older than this answers CaptchaCode 8")
    reuse_code: Literal[9, 104] = Field(9, description="second use of a ticket: 9 (current docs) or legacy 104")
    consume_on_failure: bool = Field(
        False, description="UNCONFIRMED: a verification that fails (7, 16, 8) also burns the ticket")
    max_tickets: int = Field(100_000, ge=1, description="oldest tickets are forgotten beyond this")
    strict_captcha_type: bool = Field(True, description="CaptchaType other than 9 -> InvalidParameterValue")
    # --- disaster-recovery tickets (terror_/trerror_<errorCode>_<CaptchaAppId>_<unix s>) ---------
    dr_prefixes: list[str] = Field(default_factory=lambda: ["terror_", "trerror_"])
    dr_code: int = Field(21, description="a well-formed DR ticket for the requested app")
    dr_unparsable_code: int = Field(16, description="a DR-prefixed ticket with no parsable CaptchaAppId")
    dr_appid_mismatch_code: int = Field(
        16, description="UNCONFIRMED: a DR ticket naming another CaptchaAppId than the request")
    dr_max_age_s: float | None = Field(
        None, description="UNCONFIRMED: older DR tickets answer CaptchaCode 8 (None = never)")
    dr_single_use: bool = Field(False, description="UNCONFIRMED: a DR ticket verified twice answers reuse_code")
    # --- load -----------------------------------------------------------------------------------
    rate_limit_qps: float | None = Field(
        None, gt=0, description="API calls per second above which RequestLimitExceeded (real: 1000; None = off)")
    # --- frontend (TCaptcha.js stand-in) -----------------------------------------------------
    frontend_any_appid: bool = Field(True, description="the loader issues tickets for unconfigured appids too")
    frontend_timeout_ms: int = Field(5000, ge=1, description="the loader's ticket request timeout")
    frontend_dr_prefix: str = Field("terror_", description="prefix of DR tickets the loader builds itself")

    @field_validator("dr_prefixes")
    @classmethod
    def _prefixes(cls, v: list[str]) -> list[str]:
        if any(not p for p in v):
            raise ValueError("empty prefix")
        return v
