"""What ``harness explore`` may inject into the chat service, and what must then hold."""

from harness.explore.space import FaultSpace
from mocks.chat.vocabulary import FORGERIES

SPACE = FaultSpace(
    actions=(None,),                                   # every REST command
    errors=("timeout", "app_rate_limit", "too_frequent"),   # 60008, 60011, 60018: retry later
    forgeries=FORGERIES,
    # notifications past 80 % of a small sendmsg limit: Chat raises Alert.RequestOverLimit, and the
    # integration must slow down; logins arrive through webhooks meanwhile
    base={
        "config": {"qps_limits": {"openim/sendmsg": 10}},
        "traffic": [{"name": "notify", "rate": 16, "duration": "4s", "concurrency": 4,
                     "vars": {"who": {"choice": ["alice", "bob", "carol"]}, "text": {"value": "order shipped"}},
                     "request": "${profile.chat.notify}"}],
        "timeline": [
            {"at": "0.2s", "emit": {"service": "chat", "event": "State.StateChange",
                                    "body": {"Info": {"Action": "Login", "To_Account": "erin", "Reason": "Register"}}}},
            {"at": "0.5s", "emit": {"service": "chat", "event": "State.StateChange",
                                    "body": {"Info": {"Action": "Login", "To_Account": "frank", "Reason": "Register"}}}},
        ],
        "expect": [
            {"backs_off_after_overlimit_alarm": {"within": "1s", "observe": "2s"}},
            # an integration that answers a login with a message sends one per login, whatever copies
            # of its webhook arrive (as scenarios/chat/webhook-duplicates-concurrent.yaml judges it; a
            # send a fault rule answered does not count); not exercised for one that sends none
            {"one_effect_per_inbound_event": {
                "inbound": {"kind": "callback", "service": "chat", "action": "State.StateChange"},
                "key": "json.Info.To_Account",
                "effect": {"kind": "request", "service": "chat", "action": "openim/sendmsg"},
                "effect_key": "params.To_Account"}},
        ],
    },
    expect=(
        {"webhook_acknowledged": {}},
        {"forged_webhook_refused": {}},
    ),
)
