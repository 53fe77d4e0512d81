"""The proxy layer's errors. ``str()`` is always one line; the CLI and the runner turn them into
their own one-line errors (the proxy layer never raises theirs)."""

from __future__ import annotations


class ProxyError(Exception):
    """The proxies could not be set up: a missing binary, a server that does not start or answer."""


class ProxyOptionError(ProxyError, ValueError):
    """A bad option: an unknown service, a malformed link name, run id or upstream."""
