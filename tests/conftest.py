import os

# every event a test writes (here and in the children it starts, which inherit this) must be declared
# in harness/journal/kinds.py or a service's mocks/<svc>/events.py: see docs/journal.md
os.environ["HARNESS_JOURNAL_STRICT"] = "1"

import pytest

from harness.host import HostThread
from tests.echo_service import EchoMock


@pytest.fixture()
def echo_host(tmp_path):
    """A host with only the echo test service: exercises the shared pipeline and control API."""
    with HostThread(services={"echo": {}}, service_classes={"echo": EchoMock}, run_dir=str(tmp_path),
                    seed=1, hang_limit_s=5) as ht:
        yield ht
