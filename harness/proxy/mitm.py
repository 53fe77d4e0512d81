"""Run ``mitmdump`` (mitmproxy 11, from this venv) as a reverse proxy in front of services, with the
harness addon (``mitm_addon.py``) applying the HTTP-level rules of each link.

One mitmdump process serves every route (one ``--mode reverse:<upstream>@127.0.0.1:<port>`` each); the
addon tells the routes apart by listen port. An upstream may be a mock or any real URL ("live mode":
``https://ocr.captchaai.com`` …) — decisions still come from the run's rules (mirrored by the addon), error replies
are built by the service's mock when the host runs one. Started on free ports, ready when the addon
has loaded and every port accepts connections; stopped always (see ``harness.supervisor``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.ports import free_port
from harness.proxy.errors import ProxyError, ProxyOptionError
from harness.supervisor import Child, ProcessError, port_open, wait_until
from mocks.registry import BUILT_IN, raw_request_parser

ADDON = Path(__file__).with_name("mitm_addon.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


class MitmError(ProxyError, RuntimeError):
    """mitmdump is missing or did not start; ``str()`` is one line."""


def find_mitmdump() -> str:
    env = os.environ.get("MITMDUMP")
    if env:
        return env
    beside = Path(sys.executable).with_name("mitmdump")  # the venv we run in
    if beside.is_file():
        return str(beside)
    found = shutil.which("mitmdump")
    if found:
        return found
    raise MitmError("mitmdump not found: run `make setup` (installs mitmproxy into .venv) or set MITMDUMP")


def _parser_ref(service: str | None) -> str | None:
    """``"module:function"`` of a service's raw-request reading when mitmdump would not find it in its
    own registry (a service registered at run time in this process, e.g. a test's toy service)."""
    parse = raw_request_parser(service)
    if parse is None or any(parse.__module__.startswith(m.rsplit(".", 1)[0] + ".") for m in BUILT_IN):
        return None
    name = getattr(parse, "__qualname__", "")
    return f"{parse.__module__}:{name}" if name.isidentifier() else None


@dataclass
class MitmRoute:
    link: str            # e.g. integration->solver
    service: str | None  # which mock's action/params rules to compute (None: generic)
    upstream: str        # http(s)://host:port of the mock or the real service
    port: int = 0        # listen port (0: a free one)
    tag: bool = False    # name each flow to the upstream (kinds.VIA_HEADER): only a mock, never a live service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class MitmProxy:
    def __init__(self, routes: list[MitmRoute], control_url: str, *, control_token: str | None = None,
                 run_dir: str | None = None, upstream_ca: str | None = None, hang_limit_s: float = 300.0,
                 start_timeout_s: float = 30.0, listen_host: str = "127.0.0.1", addon: bool = True,
                 client_cert: str | None = None, script: str | Path = ADDON):
        if not routes:
            raise ProxyOptionError("mitmproxy needs at least one route")
        self.routes, self.control_url, self.control_token = routes, control_url.rstrip("/"), control_token
        self.run_dir = run_dir or tempfile.mkdtemp(prefix="harness-mitm-")
        self.upstream_ca, self.hang_limit_s = upstream_ca, hang_limit_s
        self.start_timeout_s, self.listen_host = start_timeout_s, listen_host
        self.addon = addon  # False: plain mitmdump (for measuring the addon's own cost)
        self.script = str(script)  # the addon file (another one only to compare versions: bench/)
        # PEM (key + chain) shown to clients that speak TLS (plain HTTP works on the same port too)
        self.client_cert = client_cert
        self.process: Child | None = None

    @property
    def urls(self) -> dict[str, str]:
        return {r.link: f"http://{self.listen_host}:{r.port}" for r in self.routes}

    def _argv(self, binary: str, ready_file: str) -> list[str]:
        confdir = os.path.join(self.run_dir, "mitm-conf")
        os.makedirs(confdir, exist_ok=True)
        argv = [binary, "--quiet",
                "--set", f"confdir={confdir}",
                "--set", "connection_strategy=lazy",
                "--set", "client_replay_concurrency=-1",
                "--set", "termlog_verbosity=warn"]
        if self.upstream_ca:
            argv += ["--set", f"ssl_verify_upstream_trusted_ca={self.upstream_ca}"]
        if self.client_cert:
            argv += ["--set", f"certs=*={self.client_cert}"]
        for r in self.routes:
            argv += ["--mode", f"reverse:{r.upstream}@{self.listen_host}:{r.port}"]
        if all(_loopback(r.upstream) for r in self.routes):
            # the Host header as the client sent it: a mock checks signatures made over it (TC3 signs
            # Host); a reverse proxy's default is the upstream's, which a real remote service needs
            argv += ["--set", "keep_host_header=true"]
        if not self.addon:
            return argv
        routes = {str(r.port): {"link": r.link, "service": r.service, "parser": _parser_ref(r.service),
                                "tag": r.tag} for r in self.routes}
        argv += ["-s", self.script,
                 "--set", f"harness_control={self.control_url}",
                 "--set", f"harness_routes={json.dumps(routes)}",
                 "--set", f"harness_ready_file={ready_file}",
                 "--set", f"harness_hang_limit={self.hang_limit_s}"]
        if self.control_token:
            argv += ["--set", f"harness_token={self.control_token}"]
        return argv

    def start(self) -> dict[str, str]:
        binary = find_mitmdump()
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        wanted = {id(r): r.port for r in self.routes}
        last = ""
        for attempt in range(3):  # a probed free port can be taken before mitmdump binds it
            for r in self.routes:
                r.port = wanted[id(r)] or free_port(self.listen_host)
            ready_file = os.path.join(self.run_dir, f"mitm-ready-{attempt}")
            proc = Child("mitmdump", self._argv(binary, ready_file),
                         log_path=os.path.join(self.run_dir, "mitmdump.log"), env=env)
            try:
                proc.start()
            except ProcessError as e:
                raise MitmError(str(e)) from None

            def ready() -> bool:
                return (os.path.exists(ready_file) or not self.addon) and all(port_open(self.listen_host, r.port) for r in self.routes)
            if wait_until(ready, self.start_timeout_s, interval_s=0.05, child=proc):
                self.process = proc
                return self.urls
            last = proc.tail(5, sep="\n") or f"exit code {proc.returncode}"
            proc.stop()
            if "in use" not in last:
                break
        raise MitmError(f"mitmdump did not start: {last.splitlines()[-1] if last else 'no output'}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def __enter__(self) -> "MitmProxy":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")
