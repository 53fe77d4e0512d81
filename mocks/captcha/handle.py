"""The captcha_mock fixture's handle: a ``MockHandle`` with tickets and the app's credentials."""

from __future__ import annotations

from typing import Any

from harness.testing.mocks import MockHandle


class CaptchaHandle(MockHandle):
    def issue_ticket(self, **fields: Any) -> dict[str, Any]:
        """A ticket the mock will verify (as if a user solved the captcha): ``ticket``, ``randstr``,
        ``appid`` … Fields: ``appid``, ``evil_level``, ``suspicious``, ``user_ip``, ``age_s``."""
        return self.control("POST", "tickets", fields)

    def tickets(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.control("GET", "tickets", limit=limit)["tickets"]

    @property
    def app_id(self) -> int:
        return int(next(iter(self.config["apps"])))

    @property
    def app_secret_key(self) -> str:
        return str(next(iter(self.config["apps"].values())))

    @property
    def secret_id(self) -> str:
        return next(iter(self.config["secret_keys"]))

    @property
    def secret_key(self) -> str:
        return str(next(iter(self.config["secret_keys"].values())))
