"""Journal event types. Every line of a run journal is one event: a JSON object with ``seq``
(monotonic, gap-free from 1), ``ts`` (unix seconds), ``t`` (seconds since run start), ``kind``
and kind-specific fields.

Every kind and its fields are declared in ``harness/journal/kinds.py`` (the core's) and
``mocks/<svc>/events.py`` (each service's own); the table of all of them is in ``docs/journal.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_CORE = ("seq", "ts", "t", "kind", "service", "action")


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    ts: float
    t: float
    kind: str
    service: str | None = None
    action: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Event":
        return cls(seq=int(d["seq"]), ts=float(d.get("ts", 0.0)), t=float(d.get("t", 0.0)),
                   kind=str(d["kind"]), service=d.get("service"), action=d.get("action"),
                   data={k: v for k, v in d.items() if k not in _CORE})

    def get(self, key: str, default: Any = None) -> Any:
        if key in _CORE:
            return getattr(self, key)
        return self.data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        if key in _CORE:
            return getattr(self, key)
        return self.data[key]

    def to_dict(self) -> dict[str, Any]:
        d = {"seq": self.seq, "ts": self.ts, "t": self.t, "kind": self.kind}
        if self.service is not None:
            d["service"] = self.service
        if self.action is not None:
            d["action"] = self.action
        d.update(self.data)
        return d
