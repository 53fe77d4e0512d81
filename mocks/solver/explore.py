"""What ``harness explore`` may inject into the solver service, and what must then hold."""

from harness.explore.space import FaultSpace
from mocks.solver.vocabulary import POLL, SUBMIT

SPACE = FaultSpace(
    actions=(SUBMIT, POLL),
    action_errors={SUBMIT: ("ERROR_NO_SLOT_AVAILABLE",)},   # transient: submit again later (never a poll's answer)
    forgeries=("wrong_id",),
    # a busy solver: every task submitted from then on takes 2.5–3.5 s, longer than a client's usual
    # pingback wait, so fallback polls meet CAPCHA_NOT_READY (as the catalogue's slow-solving scenario)
    conditions={"slow solving": {"profiles": [{"solve_min_s": 2.5, "solve_max_s": 3.5}]}},
    # six solves, one of which the solver cannot solve (ERROR_CAPTCHA_UNSOLVABLE is an ordinary answer,
    # not a fault: a correct client never uses it as a token, and may submit the job again)
    base={
        "config": {"unsolvable_tasks": [3]},
        "traffic": [{"name": "solve", "count": 6, "rate": 4, "request": "${profile.solver.submit}"}],
    },
    # a deadline of 10 s, not the catalogue's 5 s: explore delays polls by up to 6 s, several times
    # over, and a client polling its tasks one at a time is held that long; a lost solution is one
    # never used, and that still shows
    expect=(
        {"no_lost_solutions": {"deadline": "10s"}},
        {"solutions_used_exactly_once": {"deadline": "10s"}},
        # watch 2 s (not 5): a client that stops polling an unsolvable task ends the run sooner; one that
        # polls it for ever polls on, past max_per_task
        {"poll_rate_bounded": {"max_per_task": 8, "max_rate": 20, "watch": "2s"}},
    ),
)
