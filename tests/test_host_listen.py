"""Every listener of a ``MockHost`` (each mock and the control API) really has a backlog of 1024:
aiohttp's ``SockSite`` calls ``listen()`` again with its own default (128) unless told otherwise.
``ss -ltn`` shows a listening socket's backlog in its Send-Q column."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from harness.host import BACKLOG, HostThread


def backlog_of(port: int) -> int:
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    (line,) = out.strip().splitlines()
    state, recv_q, send_q, *_ = line.split()
    assert state == "LISTEN"
    return int(send_q)


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_every_listener_has_a_backlog_of_1024(tmp_path):
    with HostThread(run_dir=str(tmp_path)) as ht:
        urls = ht.host.urls
        assert set(urls) >= {"captcha", "solver", "chat", "control"}
        backlogs = {name: backlog_of(int(url.rsplit(":", 1)[1])) for name, url in urls.items()}
        assert backlogs == {name: BACKLOG for name in urls} and BACKLOG == 1024, backlogs
        ht.call(ht.host.stop_service, "captcha")
        ht.call(ht.host.start_service, "captcha")  # a restarted mock listens anew: same backlog
        assert backlog_of(int(ht.host.urls["captcha"].rsplit(":", 1)[1])) == BACKLOG
