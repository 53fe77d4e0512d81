"""Argument types shared by the subcommands: a bad value is refused by argparse as one line
naming the option and the range it accepts (exit 2), never a traceback later on."""

from __future__ import annotations

import argparse
import math
import os

MAX_SEED = 2**63 - 1  # a scenario's seed field accepts the same range


def _integer(text: str, low: int, high: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def port(text: str) -> int:
    return _integer(text, 0, 65535, "a port number 0-65535 (0 = a free one)")


def seed(text: str) -> int:
    return _integer(text, 0, MAX_SEED, "an integer from 0 to 2**63-1")


def time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0 (e.g. 0.1), got {text!r}")
    return value


def wait_range(text: str) -> str:
    """``MIN[:MAX]`` seconds, finite, 0 <= MIN <= MAX; kept as text (the load session parses it)."""
    lo, sep, hi = text.strip().partition(":")
    try:
        values = [float(lo)] + ([float(hi)] if sep else [])
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v >= 0 for v in values) or values != sorted(values):
        raise argparse.ArgumentTypeError(f"expected MIN[:MAX] seconds, 0 <= MIN <= MAX (e.g. 0.5:1.5), got {text!r}")
    return text


def report_dir(text: str) -> str:
    """A folder that exists or can be created (checked now, not after the run)."""
    try:
        os.makedirs(text, exist_ok=True)
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot create {text}: {e.strerror}") from None
    if not os.access(text, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: not writable")
    return text
