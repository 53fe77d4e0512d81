"""The mitmproxy addon's copy of the run's ``mitm`` rules, kept in sync without a call per flow.

The host side (``RuleMirror``, made by ``POST /decide/mirror``) writes two files into the host's run
folder whenever the engine changes (rules added / removed / cleared, the run clock's start set):
``mitm-rules.json`` — the seed, the run clock's start, the time scale, the hang limit and the ``mitm``
rules with their epochs (``RuleEngine.snapshot``), replaced atomically — and then ``mitm-rules.version``,
8 bytes, the engine's version. The change is written before the call that made it returns (the
control API's ``POST /rules``, a timeline step), so a flow that starts afterwards sees it.

The addon side (``MirrorReader``) maps the version file and compares 8 bytes per flow (no system
call); when they differ it reads the JSON and hands the rules to its own ``RuleEngine.mirror``, which
keeps the counters of rules it already has. The addon is the only applier of ``mitm`` rules, so their
match counts and fired counts live in the addon alone and decisions stay exactly replayable.
Both sides are on one machine (mitmdump is started by the harness) and share CLOCK_MONOTONIC, the
run clock's base.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import threading
from typing import TYPE_CHECKING, Any

from harness.faults.rules import Applier, parse_rules

if TYPE_CHECKING:
    from harness.faults.engine import RuleEngine
    from harness.host import MockHost

RULES_FILE, VERSION_FILE = "mitm-rules.json", "mitm-rules.version"
#: not a journal event: the raw request of a flow, sent with the addon's events when ``observe`` is on
#: (a mock of the host watches what passes its links: ``observe_proxied``)
OBSERVE = "proxy.observe"
_VERSION = struct.Struct("<Q")


class RuleMirror:
    """Writes the host engine's ``mitm`` rules for the addon on every change (see the module doc)."""

    def __init__(self, host: "MockHost"):
        self.host = host
        self.rules_path = os.path.join(host.run_dir, RULES_FILE)
        self.version_path = os.path.join(host.run_dir, VERSION_FILE)
        self._lock = threading.Lock()
        self._written = -1
        fd = os.open(self.version_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, _VERSION.pack(0))
        finally:
            os.close(fd)
        host.engine.subscribe(self.write)
        self.write()

    def paths(self) -> dict[str, str]:
        return {"rules_file": self.rules_path, "version_file": self.version_path}

    def write(self) -> None:
        engine, ctx = self.host.engine, self.host.ctx
        with self._lock:  # changes may come from several threads: the newest snapshot wins
            version, rules = engine.snapshot(Applier.MITM)
            if version <= self._written:
                return
            doc = {"version": version, "seed": engine.seed, "started": engine.started,
                   "time_scale": ctx.time_scale, "hang_limit_s": ctx.hang_limit_s, "rules": rules,
                   "observe": self.host.observes_proxied()}
            tmp = f"{self.rules_path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(doc, f)
            os.replace(tmp, self.rules_path)
            fd = os.open(self.version_path, os.O_WRONLY)
            try:
                os.pwrite(fd, _VERSION.pack(version), 0)
            finally:
                os.close(fd)
            self._written = version


class MirrorReader:
    """The addon's side: ``refresh()`` once per flow; ``engine`` then holds the current rules."""

    def __init__(self, engine: "RuleEngine", rules_path: str, version_path: str):
        self.engine, self.rules_path = engine, rules_path
        self.time_scale, self.hang_limit_s = 1.0, 300.0
        self.observe = False
        self.loaded = -1
        with open(version_path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), _VERSION.size, access=mmap.ACCESS_READ)
        self.refresh()

    def refresh(self) -> None:
        if _VERSION.unpack_from(self._map)[0] == self.loaded:
            return
        with open(self.rules_path) as f:
            doc: dict[str, Any] = json.load(f)
        rules = parse_rules([r["spec"] for r in doc["rules"]], "mitm-rules") if doc["rules"] else []
        self.engine.seed = int(doc["seed"])
        self.engine.started = float(doc["started"])
        self.engine.mirror([(r["id"], int(r["epoch"]), rule) for r, rule in zip(doc["rules"], rules)])
        self.time_scale, self.hang_limit_s = float(doc["time_scale"]), float(doc["hang_limit_s"])
        self.observe = bool(doc.get("observe"))
        self.loaded = int(doc["version"])

    def close(self) -> None:
        self._map.close()
