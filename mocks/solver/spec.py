"""The solver service's registry entry: everything the harness knows about it."""

from mocks.registry import Service
from mocks.solver import vocabulary

SERVICE = Service(
    name=vocabulary.SERVICE,
    mock="mocks.solver.service:SolverMock",
    vocabulary=vocabulary,
    parse_raw_request="mocks.solver.raw_request:parse",
    invariants="mocks.solver.invariants",
    calls_back=True,                       # pingbacks
    activity_actions=(vocabulary.USE,),    # using a solution; res.php polls are not activity
    explore="mocks.solver.explore:SPACE",
    handle="mocks.solver.handle:SolverHandle",
    fixture_doc="The CaptchaAI (2Captcha-compatible) mock: ``.url``, ``.api_key``, ``.tasks()``, rules, journal …",
)
