"""What the ``harness`` and ``<service>_mock`` fixtures return.

``HarnessFixture`` is one test's view of its worker's mocks: the journal since the test started,
rules on any service or link, and a handle per mock. A ``MockHandle`` is the same for one mock:
``url``, ``add_rule`` / ``fault`` (rules default to this service), ``journal`` (this service's events
of this test), ``config`` / ``set_config``, ``stop`` / ``start``, ``control`` (its control-API routes),
plus protocol helpers on each service's subclass (``mocks/<svc>/handle.py``: ``issue_ticket`` …).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Iterator

import requests

from harness.journal import Event
from harness.testing.rules import build_rule, is_link_rule
from harness.verdict.base import event_matches
from mocks.registry import handle_class

if TYPE_CHECKING:
    from harness.testing.host import WorkerHost


class ControlError(RuntimeError):
    """A control-API call answered with an error status; ``str()`` names the route and the reason."""


class _Rules:
    """Rule helpers shared by the harness and the mock handles."""

    wh: "WorkerHost"
    _default_service: str | None = None

    def add_rule(self, rule: dict[str, Any] | None = None, /, **fields: Any) -> str:
        """Add one fault rule; returns its id (``r1``, ``r2`` … or the one you gave)."""
        return self.add_rules([build_rule(rule, default_service=self._default_service, **fields)])[0]

    def add_rules(self, rules: list[dict[str, Any]]) -> list[str]:
        built = [build_rule(r, default_service=self._default_service) for r in rules]
        ids = self.wh.host.engine.add(built)
        if any(is_link_rule(r) for r in built):
            self._sync_links()
        return ids

    def remove_rule(self, rule_id: str) -> bool:
        removed = self.wh.host.engine.remove(rule_id)
        self._sync_links()
        return removed

    def rules(self) -> list[dict[str, Any]]:
        """Active rules with their ``matched`` / ``fired`` counts."""
        rules = self.wh.host.engine.list()
        if self._default_service is None:
            return rules
        return [r for r in rules if r.get("match", {}).get("service") in (None, self._default_service)]

    @contextlib.contextmanager
    def fault(self, rule: dict[str, Any] | None = None, /, **fields: Any) -> Iterator[str]:
        """A rule for the duration of a ``with`` block: ``with captcha_mock.fault({"error": "InternalError"}):``."""
        rid = self.add_rule(rule, **fields)
        try:
            yield rid
        finally:
            self.remove_rule(rid)

    def _sync_links(self) -> None:
        links = getattr(self.wh, "links", None)
        if links is not None:
            links.sync()


class HarnessFixture(_Rules):
    """One test's view of the worker's mocks (the ``harness`` fixture)."""

    def __init__(self, wh: "WorkerHost", since: int):
        self.wh = wh
        self.since = since  # journal seq this test started after
        self._handles: dict[str, MockHandle] = {}

    @property
    def urls(self) -> dict[str, str]:
        return self.wh.urls

    @property
    def control_url(self) -> str:
        return self.wh.urls["control"]

    @property
    def ca_file(self) -> str | None:
        """The local CA of the mocks served over https (``harness_tls``); None when none is."""
        return self.wh.host.ctx.tls_ca

    @property
    def ca_env(self) -> dict[str, str]:
        """``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ``NODE_EXTRA_CA_CERTS`` … for a client process (or
        ``monkeypatch.setenv``) to trust the https mocks; empty when no mock is served over https."""
        from mocks.base.tls import client_env
        return client_env(self.ca_file) if self.ca_file else {}

    @property
    def journal(self) -> list[Event]:
        """Every journal event of this test (requests, responses, decisions, callbacks, steps …)."""
        return self.wh.events(self.since)

    def events(self, kind: str | None = None, service: str | None = None, action: str | None = None,
               **where: Any) -> list[Event]:
        """Events of this test by kind / service / action, and ``where`` fields (dotted paths, patterns
        as in rules: ``status=200``, ``**{"params.CaptchaAppId": "190000001"}``)."""
        return [e for e in self.journal if (kind is None or e.kind == kind)
                and (service is None or e.service == service) and (action is None or e.action == action)
                and (not where or event_matches(e, where))]

    def wait_for(self, kind: str | None = None, *, count: int = 1, timeout: float = 5.0,
                 service: str | None = None, action: str | None = None, **where: Any) -> list[Event]:
        """Wait until ``count`` matching events of this test exist (callbacks are asynchronous)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(kind, service, action, **where)
            if len(found) >= count or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if len(found) < count:
            want = ", ".join(f"{k}={v!r}" for k, v in {"kind": kind, "service": service, "action": action,
                                                       **where}.items() if v is not None)
            raise AssertionError(f"waited {timeout:g}s for {count} event(s) {want}: saw {len(found)}")
        return found

    def reset(self) -> None:
        """Reset again mid-test (the fixture already did before the test)."""
        self.since = self.wh.reset()

    def mock(self, name: str) -> "MockHandle":
        if name not in self._handles:
            if name not in self.wh.services:
                raise KeyError(f"no mock {name!r} on this host (have: {', '.join(self.wh.services)})")
            cls = handle_class(name) or MockHandle
            self._handles[name] = cls(self, name)
        return self._handles[name]

    def control(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        """Call the control API (``/rules``, ``/health``, ``/captcha/tickets`` …); returns parsed JSON."""
        resp = requests.request(method, self.control_url + path, json=json, params=params or None, timeout=10)
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        if resp.status_code >= 400:
            reason = body.get("error") if isinstance(body, dict) else body
            raise ControlError(f"{method} {path}: {resp.status_code} {reason}")
        return body


class MockHandle(_Rules):
    """One mock in one test (the ``<service>_mock`` fixtures)."""

    def __init__(self, harness: HarnessFixture, name: str):
        self.harness = harness
        self.wh = harness.wh
        self.name = name
        self._default_service = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.url}>"

    @property
    def url(self) -> str:
        """Base URL of the mock (direct; use the ``link`` fixture for a proxied one)."""
        return self.wh.urls[self.name]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def host_port(self) -> str:
        return self.url.split("://", 1)[1]

    @property
    def service(self) -> Any:
        """The ``ServiceMock`` object itself (runs on the host's event loop: read, don't mutate)."""
        return self.wh.host.services[self.name]

    # --- journal ---------------------------------------------------------------------------
    @property
    def journal(self) -> list[Event]:
        """This mock's events of this test: requests, responses, decisions, callbacks …"""
        return self.harness.events(service=self.name)

    def events(self, kind: str | None = None, action: str | None = None, **where: Any) -> list[Event]:
        return self.harness.events(kind, self.name, action, **where)

    def requests(self, action: str | None = None) -> list[Event]:
        return self.events("request", action)

    def responses(self, action: str | None = None) -> list[Event]:
        return self.events("response", action)

    def wait_for(self, kind: str | None = None, *, count: int = 1, timeout: float = 5.0,
                 action: str | None = None, **where: Any) -> list[Event]:
        return self.harness.wait_for(kind, count=count, timeout=timeout, service=self.name, action=action,
                                     **where)

    # --- config ----------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        return self.service.config_dict()

    def set_config(self, patch: dict[str, Any] | None = None, /, **fields: Any) -> dict[str, Any]:
        """Change config fields (validated; ``ValueError`` names the field). Reset between tests."""
        changes = {**(patch or {}), **fields}

        async def apply() -> dict[str, Any]:
            return self.service.update_config(changes)
        return self.wh.call(apply)

    # --- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop listening (clients get connection refused) until ``start()`` or the next test."""
        self.wh.call(self.wh.host.stop_service, self.name)

    def start(self) -> None:
        self.wh.call(self.wh.host.start_service, self.name)

    def control(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        """This mock's control routes: ``control("GET", "tickets")`` → ``GET {control}/<name>/tickets``."""
        path = path if path.startswith("/") else f"/{self.name}/{path}"
        return self.harness.control(method, path, json, **params)
