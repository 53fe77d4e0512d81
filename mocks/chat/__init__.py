"""Tencent Chat (IM) server-side mock: REST API, UserSig, request-rate limits, webhooks. See docs/chat.md."""

from mocks.chat.service import ChatMock

__all__ = ["ChatMock"]
