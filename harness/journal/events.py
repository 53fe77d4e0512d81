"""Journal event types. Every line of a run journal is one event: a JSON object with ``seq``
(monotonic, gap-free from 1), ``ts`` (unix seconds), ``t`` (seconds since run start), ``kind``
and kind-specific fields.

Kinds written by the harness (components may add their own, namespaced like ``proxy.flow``):

==================  ================================================================================
``request``         a mock received a request: service, action, rid, method, path, params
``response``        a mock answered: service, action, rid, status, rule (id or null), body (parsed),
                    or ``outcome`` = hang / reset / partial when the answer was a transport fault
``decision``        a rule matched a call: rule, n, fired, reason, ref (the rid or callback id)
``callback_send``   an outbound callback is about to leave: service, action, cid, url
``callback``        an outbound callback attempt: service, action, cid, url, outcome
                    (delivered / refused / timeout / error / dropped), status, latency_ms, rule
``rule_added`` …    rule_added / rule_removed / rules_cleared
``step``            a harness step: timeline entries, traffic start/stop, process start/stop
``driver``          a request the traffic driver sent to the target and what it saw
``solution``        the solver mock produced a solution: task id, token
==================  ================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("request", "response", "decision", "callback_send", "callback", "rule_added", "rule_removed", "rules_cleared",
         "step", "driver", "solution")

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
