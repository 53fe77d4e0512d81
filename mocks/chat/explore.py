"""What ``harness explore`` may inject into the chat service, and what must then hold."""

from harness.explore.space import FaultSpace
from mocks.chat.vocabulary import FORGERIES

SPACE = FaultSpace(
    actions=(None,),                                   # every REST command
    errors=("timeout", "app_rate_limit", "too_frequent"),   # 60008, 60011, 60018: retry later
    forgeries=FORGERIES,
    expect=(
        {"webhook_acknowledged": {}},
        {"forged_webhook_refused": {}},
    ),
)
