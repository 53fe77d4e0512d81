"""Tencent Chat (IM) server-side mock: REST API, UserSig, request-rate limits, webhooks. See docs/chat.md."""

from mocks.registry import lazy_exports

__getattr__ = lazy_exports({"ChatMock": "mocks.chat.service"})
__all__ = ["ChatMock"]
