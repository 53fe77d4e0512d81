"""The captcha service's registry entry: everything the harness knows about it."""

from mocks.captcha import vocabulary
from mocks.registry import Service

SERVICE = Service(
    name=vocabulary.SERVICE,
    mock="mocks.captcha.service:CaptchaMock",
    vocabulary=vocabulary,
    parse_raw_request="mocks.captcha.raw_request:parse",
    var_kinds="mocks.captcha.variables:KINDS",
    invariants="mocks.captcha.invariants",
    explore="mocks.captcha.explore:SPACE",
    handle="mocks.captcha.handle:CaptchaHandle",
    fixture_doc="The Tencent Captcha API mock: ``.url``, ``.issue_ticket()``, ``.add_rule`` / ``.fault``, "
                "``.journal`` …",
)
