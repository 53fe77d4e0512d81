import os

# every event a test writes (here and in the children it starts, which inherit this) must be declared
# in harness/journal/kinds.py or a service's mocks/<svc>/events.py: see docs/journal.md
os.environ["HARNESS_JOURNAL_STRICT"] = "1"

import pytest
from hypothesis import settings

# Property tests: `make test` (and CI) draw the same examples on every run (derandomize), so a red run
# is a change in the code, not a lucky draw. `make fuzz` (HYPOTHESIS_PROFILE=fuzz) draws new ones on
# every round; what it finds is pinned as a regression test (docs/reliability.md).
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("fuzz", derandomize=False, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

from harness.host import HostThread
from tests.echo_service import EchoMock


@pytest.fixture()
def echo_host(tmp_path):
    """A host with only the echo test service: exercises the shared pipeline and control API."""
    with HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(tmp_path),
                    seed=1, hang_limit_s=5) as ht:
        yield ht
