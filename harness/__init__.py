"""Chaos and resilience test harness for Tencent Captcha, CaptchaAI and Tencent Chat integrations."""

__version__ = "0.1.0"
