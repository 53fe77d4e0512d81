"""Picking a loopback port for a listener the harness starts later (a target, Toxiproxy, mitmproxy).

Asking the kernel for port 0 hands out a port from the *ephemeral* range, the same range it uses
for the source port of every outgoing connection. Between "pick" and "the child binds it" any
client on the machine (or another xdist worker) may take it, and the child dies with "Address
already in use". So we pick at random *below* the ephemeral range, where the kernel never assigns
ports on its own, and check with a bind that nobody holds it right now."""

from __future__ import annotations

import random
import socket

_FALLBACK_LOW = 32768
_BOTTOM = 20000  # above the well-known and most registered service ports


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_LOW


_rng = random.SystemRandom()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now, outside the kernel's ephemeral range when it can be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low = _ephemeral_low()
    if low - _BOTTOM >= 1000:
        for _ in range(64):
            port = _rng.randrange(_BOTTOM, low)
            with socket.socket(family, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket(family, socket.SOCK_STREAM) as s:  # odd port range: let the kernel choose
        s.bind((host, 0))
        return s.getsockname()[1]
