"""Our small interface to a Toxiproxy server, built on ``toxiproxy-python`` 0.1.1.

Every rough edge of that client stays in this file:
- host/port are class attributes of ``toxiproxy.api.APIConsumer`` (process-global): each call here
  points them at this client's server under one lock, so several servers in one process work;
- no request timeouts: the ``requests`` module it calls is replaced (in ``toxiproxy.api`` only) by a
  shim that adds ``timeout`` to every call;
- a server error (500, e.g. "address already in use") surfaced as ``KeyError: 'name'``, 400/404/409 as
  its own exception classes carrying raw bytes: ``validate_response`` is replaced so every status >= 400
  raises ``ToxiproxyError`` with the server's message and status;
- ``version()`` returns raw JSON bytes: decoded here;
- proxy enable/disable and toxic creation use POST, which server 2.6+ still accepts (it logs
  "HTTP method POST is deprecated. Use HTTP PATCH instead."). Verified against server 2.12.0:
  create, list, delete proxy, enable/disable, add/list/delete toxic, reset, version all work, so
  nothing here bypasses the client. It cannot *update* a toxic; we never need to (a rule's toxic is
  added when it becomes active and removed when it ends).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests as _requests
import toxiproxy.api as _tapi
from toxiproxy import Proxy, Toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.proxy.errors import ProxyError

DEFAULT_TIMEOUT_S = 5.0

_lock = threading.RLock()
_state = threading.local()


class ToxiproxyError(ProxyError, RuntimeError):
    """The Toxiproxy server refused a call or could not be reached. ``str()`` is one line."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _TimeoutRequests:
    """Stands in for the ``requests`` module inside ``toxiproxy.api``: same calls, with a timeout."""

    @staticmethod
    def _timeout(kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("timeout", getattr(_state, "timeout", DEFAULT_TIMEOUT_S))
        return kwargs

    def get(self, url: str, **kw: Any) -> _requests.Response:
        return _requests.get(url, **self._timeout(kw))

    def post(self, url: str, **kw: Any) -> _requests.Response:
        return _requests.post(url, **self._timeout(kw))

    def delete(self, url: str, **kw: Any) -> _requests.Response:
        return _requests.delete(url, **self._timeout(kw))


def _validate_response(response: _requests.Response) -> _requests.Response:
    if response.status_code >= 400:
        try:
            message = response.json().get("error") or response.text
        except ValueError:
            message = response.text
        raise ToxiproxyError(f"toxiproxy {response.request.method} {urlsplit(response.url).path}: "
                             f"{response.status_code} {str(message).strip()}", response.status_code)
    return response


_tapi.requests = _TimeoutRequests()
_tapi.validate_response = _validate_response


@dataclass(frozen=True)
class ProxyInfo:
    name: str
    listen: str      # "127.0.0.1:PORT"
    upstream: str    # "host:port"
    enabled: bool

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class ToxiproxyClient:
    """One Toxiproxy server's API (``http://host:port``)."""

    def __init__(self, api_url: str, timeout_s: float = DEFAULT_TIMEOUT_S):
        parts = urlsplit(api_url if "://" in api_url else f"http://{api_url}")
        if not parts.hostname or not parts.port:
            raise ValueError(f"toxiproxy url {api_url!r}: expected http://host:port")
        self.url = f"http://{parts.hostname}:{parts.port}"
        self.host, self.port, self.timeout_s = parts.hostname, parts.port, timeout_s

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            _tapi.APIConsumer.host, _tapi.APIConsumer.port = self.host, self.port
            _state.timeout = self.timeout_s
            try:
                return fn(*args, **kwargs)
            except ToxiproxyError:
                raise
            except (ProxyExists, NotFound, InvalidToxic) as e:  # raised by the client itself
                status = {ProxyExists: 409, NotFound: 404, InvalidToxic: 400}[type(e)]
                raise ToxiproxyError(f"toxiproxy at {self.url}: {e}", status) from None
            except _requests.RequestException as e:
                raise ToxiproxyError(f"toxiproxy at {self.url} unreachable: {type(e).__name__}") from None
            except (KeyError, ValueError) as e:
                raise ToxiproxyError(f"toxiproxy at {self.url}: unexpected answer ({type(e).__name__}: {e})") from None

    @staticmethod
    def _proxy(name: str) -> Proxy:
        return Proxy(name=name, upstream="", enabled=True, listen="")

    # --- server ----------------------------------------------------------------------------
    def version(self) -> str:
        """The server version (``"2.12.0"``); raises ``ToxiproxyError`` when nobody answers."""
        raw = self._call(Toxiproxy().version)
        if raw is None:
            raise ToxiproxyError(f"toxiproxy at {self.url} unreachable: connection refused")
        text = raw.decode("utf-8", "replace").strip()
        try:
            return str(json.loads(text)["version"])
        except (ValueError, KeyError, TypeError):
            return text  # servers before 2.9 answer plain text

    def reset(self) -> None:
        """Enable every proxy and remove every toxic (all runs on this server!)."""
        self._call(Toxiproxy().reset)

    # --- proxies ---------------------------------------------------------------------------
    def proxies(self) -> dict[str, ProxyInfo]:
        found = self._call(Toxiproxy().proxies)
        return {name: ProxyInfo(p.name, p.listen, p.upstream, bool(p.enabled)) for name, p in found.items()}

    def create(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> ProxyInfo:
        p = self._call(Toxiproxy().create, upstream=upstream, name=name, listen=listen)
        return ProxyInfo(p.name, p.listen, p.upstream, bool(p.enabled))

    def delete(self, name: str) -> None:
        self._call(self._proxy(name).destroy)

    def set_enabled(self, name: str, enabled: bool) -> None:
        proxy = self._proxy(name)
        self._call(proxy.enable if enabled else proxy.disable)

    # --- toxics ----------------------------------------------------------------------------
    def add_toxic(self, proxy: str, name: str, type: str, *, stream: str = "downstream",
                  toxicity: float = 1.0, attributes: dict[str, Any] | None = None) -> None:
        self._call(self._proxy(proxy).add_toxic, type=type, name=name, stream=stream, toxicity=toxicity,
                   attributes=dict(attributes or {}))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call(self._proxy(proxy).destroy_toxic, name)

    def toxics(self, proxy: str) -> dict[str, dict[str, Any]]:
        found = self._call(self._proxy(proxy).toxics)
        return {name: {"type": t.type, "stream": t.stream, "toxicity": t.toxicity, "attributes": t.attributes}
                for name, t in found.items()}
