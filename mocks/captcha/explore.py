"""What ``harness explore`` may inject into the captcha service, and what must then hold."""

from harness.explore.space import FaultSpace
from mocks.captcha.vocabulary import SERVICE, WEB

SPACE = FaultSpace(
    actions=(WEB,),
    # server-side, transient: a correct backend fails open on them (docs/captcha.md)
    errors=("InternalError", "RequestLimitExceeded", "ResourceUnavailable"),
    replies=({"captcha_code": 26},),   # "system busy": fail open too
    expect=(
        {"verification_fail_open": {}},
        {"verification_enforced": {}},
        {"calls_per_action_bounded": {"service": SERVICE, "action": WEB, "max_calls": 2, "min_backoff": "100ms"}},
    ),
)
