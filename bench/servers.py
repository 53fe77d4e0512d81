"""The servers `make bench` measures, each in its best configuration (and the peers' defaults next
to it where they differ), and the requests sent to them.

Every one serves the same DescribeCaptchaResult-style answer to the same signed POST (the peers from
a static stub; ours verifies the TC3 signature, looks the ticket up, consults the rule engine and
journals request, decision and answer). ``NOTES`` says how each one is configured.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from measure import BENCH, OUT, PY, ROOT, measure, post_json, process, wait_port, wrk

if ROOT not in sys.path:
    sys.path.append(ROOT)  # after a tree put first (bench/profile_handler.py --tree)

from harness.ports import free_port  # noqa: E402

STUB = {"Response": {"CaptchaCode": 1, "CaptchaMsg": "OK", "EvilLevel": 0, "GetCaptchaTime": 0,
                     "RequestId": "5b8e4c5e-0d5c-4b5f-9b1e-3f4f5e6a7b8c"}}
POST_SCRIPT = os.path.join(BENCH, "captcha_post.lua")
TICKETS_SCRIPT = os.path.join(BENCH, "captcha_tickets.lua")
# the rule every run of ours carries: the rule engine is consulted, this rule never fires
INACTIVE_RULE = {"match": {"service": "captcha", "params": {"Ticket": "never"}}, "effect": {"error": "InternalError"}}
RULE_10PCT = {"match": {"service": "captcha"}, "effect": {"captcha_code": 26}, "schedule": {"probability": 0.1}}


@dataclass
class Target:
    """A started server: where to send wrk, with what, and what to do before each measurement."""

    proc: subprocess.Popen
    url: str
    env: dict[str, str] = field(default_factory=dict)
    script: str | None = POST_SCRIPT
    before: Callable[[], None] = lambda: None
    info: dict[str, Any] = field(default_factory=dict)  # e.g. WireMock's warm-up windows

    def measure(self, seconds: float) -> dict[str, Any]:
        self.before()
        return measure(self.proc, self.url, seconds, self.env, self.script)

    def load(self, seconds: float) -> dict[str, Any]:
        """Load without measuring the server's CPU (a warm-up)."""
        self.before()
        return wrk(self.url, seconds, self.env, self.script)


# --- requests ----------------------------------------------------------------------------------
def signed_request(port: int, ticket: str = "t03bench", randstr: str = "@abc") -> tuple[str, dict[str, str]]:
    from mocks.captcha.config import DEFAULT_APP_ID, DEFAULT_APP_SECRET_KEY, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
    from mocks.captcha.signature import sign_headers
    body = json.dumps({"CaptchaType": 9, "Ticket": ticket, "UserIp": "127.0.0.1", "Randstr": randstr,
                       "CaptchaAppId": DEFAULT_APP_ID, "AppSecretKey": DEFAULT_APP_SECRET_KEY})
    headers = sign_headers(secret_id=DEFAULT_SECRET_ID, secret_key=DEFAULT_SECRET_KEY, host=f"127.0.0.1:{port}",
                           action="DescribeCaptchaResult", payload=body.encode())
    return body, headers


def wrk_env(body: str, headers: dict[str, str]) -> dict[str, str]:
    """What bench/captcha_post.lua reads: the body and the headers of the request it sends."""
    return {"BENCH_BODY": body, "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items())}


def solver_res_url(control: str, solver: str) -> str:
    """A res.php?action=get URL for a task just created with in.php (the solver's polling call)."""
    key = json.loads(urllib.request.urlopen(control + "/solver/config").read())["keys"]
    key = next(iter(key)) if isinstance(key, dict) else key[0]
    task = urllib.request.urlopen(f"{solver}/in.php?key={key}&method=userrecaptcha"
                                  f"&googlekey=k&pageurl=http://x").read().decode().split("|")[1]
    return f"{solver}/res.php?key={key}&action=get&id={task}"


def issue_tickets(control: str, n: int) -> list[dict[str, Any]]:
    """``n`` tickets from the captcha mock's control API, on one keep-alive connection."""
    host, port = control.split("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    out = []
    for _ in range(n):
        conn.request("POST", "/captcha/tickets", body=b"{}", headers={"Content-Type": "application/json"})
        out.append(json.loads(conn.getresponse().read()))
    conn.close()
    return out


def write_ticket_requests(port: int, tickets: list[dict[str, Any]], path: str) -> None:
    """One signed raw HTTP request per ticket, NUL-separated, for bench/captcha_tickets.lua."""
    with open(path, "wb") as f:
        for t in tickets:
            body, headers = signed_request(port, t["ticket"], t["randstr"])
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            f.write(f"POST / HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n{body}".encode() + b"\0")


# --- ours --------------------------------------------------------------------------------------
@contextmanager
def ours(kind: str, tickets: int = 0) -> Iterator[Target]:
    """``harness serve`` with the journal on: ``captcha`` (1 inactive rule), ``captcha-10pct`` (and a
    rule firing on 10 %), ``captcha-tickets`` (``tickets`` distinct tickets), ``solver``."""
    port, control = free_port(), free_port()
    os.makedirs(OUT, exist_ok=True)
    journal = os.path.join(OUT, f"journal-{kind}.jsonl")
    service = "solver" if kind == "solver" else "captcha"
    argv = [PY, "-m", "harness", "serve", "--services", service, f"--{service}-port", str(port),
            "--control-port", str(control), "--journal", journal]
    with process(argv, cwd=ROOT) as proc:
        json.loads(proc.stdout.readline())
        c, url = f"http://127.0.0.1:{control}", f"http://127.0.0.1:{port}"
        if service == "solver":
            yield Target(proc, solver_res_url(c, url), script=None)
            return
        post_json(c + "/rules", INACTIVE_RULE)
        if kind == "captcha-10pct":
            post_json(c + "/rules", RULE_10PCT)
        if kind == "captcha-tickets":
            requests = os.path.join(OUT, "ticket-requests.bin")
            write_ticket_requests(port, issue_tickets(c, tickets), requests)
            yield Target(proc, url + "/", {"BENCH_REQUESTS": requests}, TICKETS_SCRIPT,
                         info={"tickets": tickets})
            return
        yield Target(proc, url + "/", wrk_env(*signed_request(port)))


# --- the ceiling ---------------------------------------------------------------------------------
@contextmanager
def ceiling(journal: bool, raw: bool = False) -> Iterator[Target]:
    """bench/aiohttp_ceiling.py: the same aiohttp and loop, the same bytes, nothing else (``journal``:
    plus one orjson line per request, one write(2); ``raw``: no aiohttp, an httptools protocol)."""
    port = free_port()
    argv = [PY, os.path.join(BENCH, "aiohttp_ceiling.py"), str(port)] + (["--raw"] if raw else [])
    if journal:
        argv += ["--journal", os.path.join(OUT, "journal-ceiling.jsonl")]
    with process(argv, cwd=ROOT) as proc:
        proc.stdout.readline()
        yield Target(proc, f"http://127.0.0.1:{port}/", wrk_env(*signed_request(port)))


# --- WireMock --------------------------------------------------------------------------------------
@contextmanager
def wiremock(journal: bool) -> Iterator[Target]:
    """WireMock standalone (the jar the npm package ships), one JSON stub; ``journal`` False:
    ``--no-request-journal``. Its request journal is cleared before each measurement (it keeps every
    request in memory otherwise)."""
    jar_dir = os.path.join(BENCH, "node_modules", "wiremock", "build")
    jar = os.path.join(jar_dir, next(f for f in os.listdir(jar_dir) if f.endswith(".jar")))
    port = free_port()
    root = os.path.join(OUT, "wiremock")
    os.makedirs(root, exist_ok=True)
    argv = ["java", "-jar", jar, "--port", str(port), "--disable-banner", "--root-dir", root]
    if not journal:
        argv.append("--no-request-journal")
    with open(os.path.join(OUT, "wiremock.out"), "w") as log, process(argv, cwd=BENCH, stdout=log) as proc:
        wait_port(port)
        admin = f"http://127.0.0.1:{port}/__admin"
        post_json(admin + "/mappings", {"request": {"method": "POST", "url": "/"},
                                        "response": {"status": 200, "jsonBody": STUB,
                                                     "headers": {"Content-Type": "application/json"}}})

        def clear_journal() -> None:
            if journal:
                urllib.request.urlopen(urllib.request.Request(admin + "/requests", method="DELETE"), timeout=30)
        yield Target(proc, f"http://127.0.0.1:{port}/", wrk_env(*signed_request(port)), before=clear_journal)


def warm_until_stable(target: Target, window: float, least: float, most: float, agree: float = 0.05) -> None:
    """Load ``target`` in windows of ``window`` s until two consecutive windows agree within ``agree``
    and at least ``least`` s have passed (``most`` s at the most). The windows go to ``target.info``."""
    rates: list[float] = []
    while True:
        rates.append(target.load(window)["rps"])
        spent = window * len(rates)
        settled = len(rates) >= 2 and abs(rates[-1] - rates[-2]) <= agree * max(rates[-2:])
        print(f"  warm-up window {len(rates)}: {rates[-1]:.0f} req/s", flush=True)
        if (settled and spent >= least) or spent >= most:
            break
    target.info.update(warm_s=spent, warm_windows=[round(r) for r in rates], settled=settled)


# --- Mountebank -------------------------------------------------------------------------------------
@contextmanager
def mountebank(keep_alive: bool) -> Iterator[Target]:
    """One HTTP imposter with one stub. ``keep_alive``: the stub answers ``Connection: keep-alive``
    and mb logs warnings only, to no file; otherwise mb's defaults (its answers say
    ``Connection: close``, info log to the console and mb.log)."""
    mb = os.path.join(BENCH, "node_modules", ".bin", "mb")
    admin, port = free_port(), free_port()
    os.makedirs(OUT, exist_ok=True)
    argv = [mb, "start", "--port", str(admin), "--pidfile", os.path.join(OUT, "mb.pid")]
    argv += ["--loglevel", "warn", "--nologfile"] if keep_alive else ["--logfile", os.path.join(OUT, "mb.log")]
    headers = {"Content-Type": "application/json", **({"Connection": "keep-alive"} if keep_alive else {})}
    with open(os.path.join(OUT, "mb.out"), "w") as log, process(argv, cwd=OUT, stdout=log) as proc:
        wait_port(admin)
        post_json(f"http://127.0.0.1:{admin}/imposters", {
            "protocol": "http", "port": port,
            "stubs": [{"predicates": [{"equals": {"method": "POST", "path": "/"}}],
                       "responses": [{"is": {"statusCode": 200, "headers": headers, "body": STUB}}]}]})
        wait_port(port)
        yield Target(proc, f"http://127.0.0.1:{port}/", wrk_env(*signed_request(port)))
