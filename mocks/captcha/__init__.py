"""Tencent Cloud Captcha mock (DescribeCaptchaResult API 3.0 + a TCaptcha.js stand-in). See docs/captcha.md."""

from mocks.registry import lazy_exports

__getattr__ = lazy_exports({"CaptchaConfig": "mocks.captcha.config", "CaptchaMock": "mocks.captcha.service"})
__all__ = ["CaptchaConfig", "CaptchaMock"]
