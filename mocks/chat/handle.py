"""The chat_mock fixture's handle: a ``MockHandle`` with UserSig, webhooks and messages."""

from __future__ import annotations

from typing import Any

from harness.testing.mocks import MockHandle


class ChatHandle(MockHandle):
    @property
    def sdkappid(self) -> int:
        return int(self.config["sdkappid"])

    def usersig(self, identifier: str | None = None, expire: int | None = None) -> str:
        params: dict[str, Any] = {}
        if identifier:
            params["identifier"] = identifier
        if expire is not None:
            params["expire"] = expire
        return self.control("GET", "usersig", **params)["usersig"]

    def send_webhook(self, command: str, **body: Any) -> dict[str, Any]:
        """Send one callback to ``config["webhook_url"]`` now; returns the app's answer."""
        return self.control("POST", "webhooks", {"CallbackCommand": command, **body})

    def messages(self) -> list[dict[str, Any]]:
        return self.control("GET", "messages")["messages"]
