"""What ``harness explore`` may inject into the captcha service, and what must then hold."""

from harness.explore.space import FaultSpace
from mocks.captcha.vocabulary import SERVICE, WEB

SPACE = FaultSpace(
    actions=(WEB,),
    # server-side, transient. A correct backend fails open on InternalError (docs/captcha.md); on the
    # other two it may fail open or refuse (its policy: no invariant judges a login whose last answer
    # was one), but they still try its retries and call bounds
    errors=("InternalError", "RequestLimitExceeded", "ResourceUnavailable"),
    replies=({"captcha_code": 26},),   # "system busy": fail open too
    # good and bad logins one at a time, one flow after the other (a verification call belongs to the
    # one login in flight: calls_per_action_bounded judges it), then DR tickets a correct backend
    # refuses whatever the API does: another app's, or stale
    base={
        "traffic": [
            {"name": "login", "count": 6, "concurrency": 1, "vars": {"t": {"captcha_ticket": {}}},
             "request": "${profile.captcha.login}"},
            {"name": "bad-login", "count": 2, "start": "1.5s", "vars": {"t": {"bad_ticket": {"kind": "unknown"}}},
             "request": "${profile.captcha.login}"},
            {"name": "dr-wrong-app", "count": 1, "start": "2.5s", "vars": {"t": {"dr_ticket": {"appid": "wrong"}}},
             "request": "${profile.captcha.login}"},
            {"name": "dr-stale", "count": 1, "start": "2.5s", "vars": {"t": {"dr_ticket": {"age": "2h"}}},
             "request": "${profile.captcha.login}"},
        ],
        "expect": [{"forged_dr_ticket_refused": {}}],
    },
    expect=(
        {"verification_fail_open": {}},
        {"verification_enforced": {}},
        {"calls_per_action_bounded": {"service": SERVICE, "action": WEB, "max_calls": 2, "min_backoff": "100ms"}},
    ),
)
