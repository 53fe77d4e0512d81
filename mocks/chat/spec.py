"""The chat service's registry entry: everything the harness knows about it."""

from mocks.chat import vocabulary
from mocks.registry import Service

SERVICE = Service(
    name=vocabulary.SERVICE,
    mock="mocks.chat.service:ChatMock",
    vocabulary=vocabulary,
    parse_raw_request="mocks.chat.raw_request:parse",
    invariants="mocks.chat.invariants",
    calls_back=True,                       # webhooks
    explore="mocks.chat.explore:SPACE",
    handle="mocks.chat.handle:ChatHandle",
    fixture_doc="The Tencent Chat mock: ``.url``, ``.sdkappid``, ``.usersig()``, ``.send_webhook()``, rules, "
                "journal …",
)
