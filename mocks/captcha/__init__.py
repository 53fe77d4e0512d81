"""Tencent Cloud Captcha mock (DescribeCaptchaResult API 3.0 + a TCaptcha.js stand-in). See docs/captcha.md."""

from mocks.captcha.config import CaptchaConfig
from mocks.captcha.service import CaptchaMock

__all__ = ["CaptchaConfig", "CaptchaMock"]
