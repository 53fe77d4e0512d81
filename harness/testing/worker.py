"""Which pytest-xdist worker this process is, and names that are unique per worker and process."""

from __future__ import annotations

import os
import re
import secrets


def worker_id() -> str:
    """``gw0``, ``gw1`` … under pytest-xdist; ``main`` otherwise."""
    return os.environ.get("PYTEST_XDIST_WORKER") or "main"


def unique_name(prefix: str) -> str:
    """``<prefix>-<worker>-<pid>-<random>``: safe as a Toxiproxy run id, file or folder name."""
    base = re.sub(r"[^A-Za-z0-9_-]", "-", prefix)[:24]
    return f"{base}-{worker_id()}-{os.getpid()}-{secrets.token_hex(2)}"
