"""Chat sends webhooks on demand (the timeline's ``emit`` step): a genuine, signed
``Alert.RequestOverLimit`` and bursts spread over a time, to an app that never called REST."""

import asyncio
import hashlib
import time

import pytest
import requests

from harness.host import HostThread
from harness.journal import read_events
from harness.run.timeline import play
from harness.scenario.model import Scenario, Step
from mocks.solver.receiver import ReceiverThread

TOKEN = "webhook-secret"


@pytest.fixture()
def receiver():
    with ReceiverThread() as r:
        yield r


@pytest.fixture()
def chat(tmp_path, receiver):
    cfg = {"webhook_url": receiver.url, "webhook_token": TOKEN}
    with HostThread(services={"chat": cfg}, run_dir=str(tmp_path), seed=4) as ht:
        yield ht


def emit(ht, **payload):
    return requests.post(ht.host.urls["control"] + "/chat/emit", json=payload, timeout=10)


def journal(ht, kind):
    return [e for e in read_events(ht.host.journal.read_since(0)) if e.kind == kind]


def test_a_genuine_alarm_with_a_valid_sign_and_a_fresh_request_time(chat, receiver):
    r = emit(chat, event="Alert.RequestOverLimit", body={"Request": 250, "Limit": 200})
    assert r.status_code == 202, r.text
    (got,) = receiver.wait_for(1)
    q = got.query
    assert q["CallbackCommand"] == "Alert.RequestOverLimit" and q["OptPlatform"] == "RESTAPI"
    assert q["Sign"] == hashlib.sha256(f"{TOKEN}{q['RequestTime']}".encode()).hexdigest()
    assert abs(int(q["RequestTime"]) - time.time()) <= 2
    (alarm,) = journal(chat, "rate_alarm")
    assert alarm["origin"] == "emit" and alarm["Request"] == 250 and alarm["Command"] == "sendmsg"


def test_a_burst_is_many_distinct_events_spread_over_within(chat, receiver):
    r = emit(chat, event="C2C.CallbackAfterSendMsg", count=10, within_s=0.2)
    assert r.status_code == 202
    got = sorted(receiver.wait_for(10), key=lambda g: g.t)
    assert len(got) == 10 and got[-1].t - got[0].t < 0.6
    # spread by the mock: each send leaves no earlier than its start (arrival times at the receiver
    # may bunch up on a loaded machine, so the mock's own send times are the measure)
    left = [e.t for e in journal(chat, "callback_send") if e.action == "C2C.CallbackAfterSendMsg"][-10:]
    assert len(left) == 10 and 0.15 <= max(left) - min(left) < 0.6
    sends = journal(chat, "callback")
    assert len({e["json"]["MsgKey"] for e in sends}) == 10


@pytest.mark.parametrize("payload, status, message", [
    ({"event": "nope"}, 400, "event:"),
    ({"event": "State.StateChange", "count": 0}, 400, "count:"),
    ({"event": "State.StateChange", "within_s": -1}, 400, "within_s:"),
    ({"event": "State.StateChange", "colour": 1}, 400, "colour: unknown field"),
])
def test_bad_emit_requests_get_one_line(chat, payload, status, message):
    r = emit(chat, **payload)
    assert r.status_code == status and message in r.json()["error"]


class _Stage:
    """Just what the timeline needs for an emit step."""

    def __init__(self, ht):
        self.ht, self.t0, self.time_scale, self.events = ht, time.monotonic(), 1.0, []

    def record(self, event):
        self.events.append(event)
        return len(self.events)

    def subscribe(self, listener):
        return lambda: None

    def control_url(self):
        return self.ht.host.urls["control"]


def test_the_emit_step_goes_through_the_control_api(chat, receiver):
    stage = _Stage(chat)
    step = Step.model_validate({"at": 0, "emit": {"service": "chat", "event": "State.StateChange", "count": 3}})
    asyncio.run(play([step], stage))
    assert len(receiver.wait_for(3)) == 3
    (ev,) = stage.events
    assert ev["step"] == "timeline.emit" and ev["status"] == 202 and ev["count"] == 3


def test_emit_steps_are_validated():
    base = {"name": "x", "target": {"url": "http://127.0.0.1:1"}}
    with pytest.raises(ValueError, match="count"):
        Scenario.model_validate({**base, "timeline": [{"at": 0, "emit": {"service": "chat", "event": "A.B",
                                                                         "count": 0}}]})
    with pytest.raises(ValueError, match="within"):
        Scenario.model_validate({**base, "timeline": [{"at": 0, "emit": {"service": "chat", "event": "A.B",
                                                                         "within": "soon"}}]})
