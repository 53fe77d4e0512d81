"""Locust user classes from a scenario's traffic flows.

One ``FastHttpUser`` class per flow. Each task sends the flow's request once, built from its
template with fresh ``vars`` and the run context, exactly as the traffic driver would, and hands a
``driver`` event (what was sent, the vars it carried, what came back, latency) to the session's
journal batcher. Weights follow the flows' sizes: ``count``, else ``rate`` × ``duration``, else
``rate``, else 1. ``start`` / ``duration`` still hold (a user waits for its flow's start and idles
after its end, on the clock of locust's test start); ``concurrency`` and ``rate`` as limits do not —
``--users`` and ``--wait`` set the load.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import gevent
from locust import FastHttpUser, task

from harness.load.flows import build_request, class_name, error_text, unreached, weight_of
from harness.run.driver_event import driver_event
from harness.run.traffic import body_of
from harness.scenario.model import Flow

if TYPE_CHECKING:
    from harness.load.session import LoadSession

IDLE_S = 0.5  # how long an idle user (flow not started yet / over) sleeps per task


class FlowUser(FastHttpUser):
    abstract = True
    flow: Flow
    flow_index: int
    harness: "LoadSession"

    def on_start(self) -> None:
        self.harness.wait_ready()

    @task
    def send(self) -> None:
        flow, h = self.flow, self.harness
        elapsed = h.elapsed()
        scale = h.time_scale
        if elapsed < flow.start * scale:
            gevent.sleep(min(IDLE_S, flow.start * scale - elapsed))
            return
        if flow.duration is not None and elapsed >= (flow.start + flow.duration) * scale:
            gevent.sleep(IDLE_S)
            return
        n = h.next_n(self.flow_index)
        values = h.var_maker(self.flow_index).values(flow.vars)
        ctx = {**h.ctx, **values, "n": n, "flow": flow.name}
        url, kwargs = build_request(flow, ctx)
        event = driver_event(flow, n, url, values, driver="locust")
        if h.mode == "worker":
            event["worker"] = h.worker_index
        start = time.perf_counter()
        if flow.ok_status is None:
            resp = self.client.request(flow.request.method, url, name=flow.name, **kwargs)
        else:  # the flow says which answers are right (a 403 for a bad ticket): locust's statistics agree
            with self.client.request(flow.request.method, url, name=flow.name, catch_response=True, **kwargs) as resp:
                if resp.status_code in flow.ok_status:
                    resp.success()
                else:
                    resp.failure(f"HTTP {resp.status_code or error_text(getattr(resp, 'error', None))} "
                                 f"(ok_status: {flow.ok_status})")
        event["latency_ms"] = round((time.perf_counter() - start) * 1000, 3)
        if resp.status_code:
            try:
                body = resp.content or b""
            except Exception:  # the body broke off: what the client saw is still the status
                body = b""
            event.update(status=resp.status_code,
                         response=body_of(body, (resp.headers or {}).get("Content-Type", "") or ""))
        else:
            error = getattr(resp, "error", None)
            event.update(status=None, error=error_text(error), **({"unreached": True} if unreached(error) else {}))
        h.journal.add(event)


def build_user_classes(flows: list[Flow], session: "LoadSession", wait_time: Any) -> dict[str, type[FlowUser]]:
    classes: dict[str, type[FlowUser]] = {}
    taken: set[str] = set()
    for index, flow in enumerate(flows):
        if flow.count == 0:
            continue
        name = class_name(flow, taken)
        classes[name] = type(name, (FlowUser,), {
            "abstract": False, "flow": flow, "flow_index": index, "harness": session,
            "weight": weight_of(flow), "wait_time": wait_time, "host": "http://127.0.0.1",
            "network_timeout": flow.timeout, "connection_timeout": flow.timeout,
            "__module__": __name__,
        })
    return classes
