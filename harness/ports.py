"""Picking a loopback port for a listener the harness starts later (a target, Toxiproxy, mitmproxy).

Asking the kernel for port 0 hands out a port from the *ephemeral* range, the same range it uses
for the source port of every outgoing connection. Between "pick" and "the child binds it" any
client on the machine (or another xdist worker) may take it, and the child dies with "Address
already in use". So we pick at random *below* the ephemeral range, where the kernel never assigns
ports on its own, and check with a bind that nobody holds it right now. A port this process handed
out is not handed out again (its child may not have bound it yet: a run picks the target's port,
then its links' ports, and only then starts the target). Other processes (xdist workers, a second
run) are kept off it too: the pick is claimed for a minute by binding the abstract Unix socket
``harness-port-<n>``, which the kernel frees by itself when the process dies."""

from __future__ import annotations

import random
import socket
import sys
import threading
import time
from collections import deque

_FALLBACK_LOW = 32768
_BOTTOM = 20000  # above the well-known and most registered service ports
_REMEMBER = 4096  # ports handed out that are never handed out again (the oldest are forgotten)
_CLAIM_S = 60.0  # how long other processes are kept off a port we picked (time for our child to bind it)
_CLAIM_MAX = 256  # claims held at once (each is a file descriptor); the oldest go first

_rng = random.SystemRandom()
_issued: dict[int, None] = {}  # insertion-ordered set
_claims: deque[tuple[float, socket.socket]] = deque()
_lock = threading.Lock()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_LOW


def _bindable(family: socket.AddressFamily, host: str, port: int) -> int | None:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return None
        return s.getsockname()[1]


def _claim(port: int) -> bool:
    """Claim ``port`` against other processes; False if one of them claimed it first."""
    if not sys.platform.startswith("linux"):  # no abstract socket namespace: per-process only
        return True
    now = time.monotonic()
    while _claims and (now - _claims[0][0] > _CLAIM_S or len(_claims) >= _CLAIM_MAX):
        _claims.popleft()[1].close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(f"\0harness-port-{port}")
    except OSError:
        s.close()
        return False
    _claims.append((now, s))
    return True


def _issue(port: int) -> int:
    _issued[port] = None
    if len(_issued) > _REMEMBER:
        del _issued[next(iter(_issued))]
    return port


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now and this process has not handed out, outside the kernel's
    ephemeral range when it can be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low = _ephemeral_low()
    with _lock:
        if low - _BOTTOM >= 1000:
            for _ in range(64):
                port = _rng.randrange(_BOTTOM, low)
                if port not in _issued and _bindable(family, host, port) and _claim(port):
                    return _issue(port)
        for _ in range(64):  # odd port range: let the kernel choose
            port = _bindable(family, host, 0)
            if port is not None and port not in _issued and _claim(port):
                return _issue(port)
    raise OSError(f"no free port on {host}")
