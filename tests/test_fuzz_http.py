"""Fuzzing the doors: schemathesis against the control API's OpenAPI document, malformed HTTP on raw
sockets to every mock and the control API, and well-framed requests with hostile content to every
mock endpoint. No answer may be a 5xx (the mocks answer what the real service would, or 4xx), no
traceback may be logged, and every server keeps serving afterwards. Figures: docs/reliability.md.
"""

from __future__ import annotations

import gc
import json
import logging
import socket
import urllib.parse
from collections import Counter
from typing import Any, Callable, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from harness.host import HostThread

SERVICES = ("captcha", "solver", "chat")
HYP = dict(deadline=None, suppress_health_check=list(HealthCheck))


# --- helpers -----------------------------------------------------------------------------------
class LogTrap(logging.Handler):
    """Every record logged with a traceback, or at ERROR or above, while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            exc = record.exc_info[1] if record.exc_info else None
            self.bad.append(f"{record.name} {record.levelname} {record.getMessage()[:200]} {exc!r}"[:400])


@pytest.fixture()
def log_trap() -> Iterator[LogTrap]:
    trap = LogTrap()
    root = logging.getLogger()
    old = root.level
    root.addHandler(trap)
    root.setLevel(logging.DEBUG)
    try:
        yield trap
    finally:
        root.removeHandler(trap)
        root.setLevel(old)


@pytest.fixture()
def host(tmp_path) -> Iterator[HostThread]:
    with HostThread(run_dir=str(tmp_path), seed=3, hang_limit_s=2) as ht:
        yield ht


def port_of(ht: HostThread, name: str) -> int:
    return int(ht.host.urls[name].rsplit(":", 1)[1])


def exchange(port: int, data: bytes, *, read: bool = True, timeout: float = 5.0) -> bytes:
    """Send raw bytes; read until the server closes (we always ask for Connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused mid-send (e.g. headers too large) and closed: read its answer
        if not read:
            return b""
        out = b""
        try:
            while len(out) < 4 << 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except ConnectionResetError:
            pass
        return out


def status_of(answer: bytes) -> int | None:
    line = answer.split(b"\r\n", 1)[0]
    if not line.startswith(b"HTTP/") or len(line) < 12 or not line[9:12].isdigit():
        return None
    return int(line[9:12])


def request(method: str, target: str, headers: list[tuple[str, str]] = (), body: bytes = b"",
            version: str = "HTTP/1.1", host: bool = True) -> bytes:
    head = f"{method} {target} {version}\r\n" + ("Host: 127.0.0.1\r\n" if host else "")
    head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "Connection: close\r\n\r\n"
    return head.encode("latin-1") + body


NORMAL = {  # a well-formed request per server and the status it must get
    "captcha": (lambda: request("GET", "/TCaptcha.js"), 200),
    "solver": (lambda: request("GET", "/res.php?key=x&action=get&id=1"), 200),
    "chat": (lambda: request("POST", "/v4/openim/sendmsg?sdkappid=1&identifier=a&usersig=x&random=1",
                             [("Content-Type", "application/json"), ("Content-Length", "2")], b"{}"), 200),
    "control": (lambda: request("GET", "/health"), 200),
}


def still_serving(ht: HostThread, name: str) -> None:
    make, want = NORMAL[name]
    answer = exchange(port_of(ht, name), make())
    assert status_of(answer) == want, (name, answer[:300])


# --- 1. schemathesis on the control API --------------------------------------------------------
def test_control_api_schemathesis_never_5xx(host, log_trap):
    url = host.host.urls["control"]
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    seen: Counter[tuple[str, str, int]] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=10, **HYP)
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                response = case.call(base_url=url, timeout=10)
                seen[(op.label, mode.value, response.status_code)] += 1
                case.validate_response(response, checks=[not_a_server_error])

            try:
                run()
            except Unsatisfiable:  # no parameters to make invalid (e.g. GET /health): nothing to send
                assert mode is GenerationMode.NEGATIVE
    total = sum(seen.values())
    print(f"\nschemathesis: {total} requests over {len(operations)} operations; statuses "
          f"{dict(sorted(Counter(s for *_, s in seen.elements()).items()))}")
    assert total >= 250
    assert not [k for k in seen if k[2] >= 500]
    assert not log_trap.bad, log_trap.bad[:5]
    still_serving(host, "control")


@pytest.mark.parametrize("target", [
    "/chat/usersig?expire=" + "9" * 30, "/chat/usersig?expire=-" + "9" * 30, "/chat/usersig?identifier=%ff%fe",
    "/journal?since=" + "9" * 30 + "&limit=" + "9" * 30, "/journal?since=-1", "/solver/tasks?limit=" + "9" * 30,
    "/captcha/tickets?limit=-" + "9" * 30, "/solver/tasks/" + "9" * 40, "/rules/%00", "/health?x=%ff",
])
def test_control_api_edge_values(host, log_trap, target):
    """Regressions found by the fuzzers (a 64-bit overflow in /chat/usersig was a 500)."""
    status = status_of(exchange(port_of(host, "control"), request("GET", target)))
    assert status is not None and status < 500, (target, status)
    assert not log_trap.bad, log_trap.bad[:5]


# --- 2. malformed HTTP on raw sockets ------------------------------------------------------------
def _json(body: bytes, ctype: str = "application/json") -> list[tuple[str, str]]:
    return [("Content-Type", ctype), ("Content-Length", str(len(body)))]


MALFORMED: dict[str, Callable[[str], bytes]] = {
    "unknown method": lambda p: request("FOO", p),
    "lower-case method": lambda p: request("get", p),
    "10 kB method": lambda p: request("X" * 10_000, p),
    "CONNECT": lambda p: request("CONNECT", "127.0.0.1:443"),
    "TRACE": lambda p: request("TRACE", p),
    "HTTP/0.9": lambda p: f"GET {p}\r\n\r\n".encode(),
    "HTTP/9.9": lambda p: request("GET", p, version="HTTP/9.9"),
    "no version": lambda p: f"GET {p}\r\nHost: x\r\n\r\n".encode(),
    "LF only": lambda p: f"GET {p} HTTP/1.1\nHost: x\nConnection: close\n\n".encode(),
    "no Host": lambda p: request("GET", p, host=False),
    "absolute URI": lambda p: request("GET", "http://evil.example" + p),
    "asterisk": lambda p: request("OPTIONS", "*"),
    "bad percent-escapes": lambda p: request("GET", p + "%ff%00%zz?a=%ff&b=%zz&&=&c=%"),
    "raw UTF-8 in target": lambda p: request("GET", p + "?q=é").replace(b"\xe9", "é".encode()),
    "200 kB header": lambda p: request("GET", p, [("X-Big", "a" * 200_000)]),
    "5000 headers": lambda p: request("GET", p, [(f"X-{i}", "a") for i in range(5000)]),
    "bad header name": lambda p: request("GET", p, [("Bad Header", "x")]),
    "control char in header": lambda p: request("GET", p, [("X-A", "a\x01b")]),
    "NUL in header": lambda p: request("GET", p, [("X-A", "a\x00b")]),
    "obsolete line folding": lambda p: request("GET", p, [("X-A", "a\r\n b")]),
    "UTF-8 header value": lambda p: request("GET", p, [("X-A", "\u00e9")]).replace(b"\xe9", "é".encode()),
    "Latin-1 byte in every protocol header": lambda p: request("POST", p, [
        (h, "x\u00e9") for h in ("X-TC-Action", "X-TC-Version", "X-TC-Timestamp", "X-TC-Region", "Authorization",
                                  "X-TC-Content-SHA256", "Origin", "Referer", "User-Agent", "Cookie")]
        + _json(b"{}"), b"{}"),
    "Latin-1 byte in Content-Type": lambda p: request("POST", p, _json(b"{}", "application/json; charset=\u00e9"),
                                                     b"{}"),
    "Latin-1 X-TC-Action alone": lambda p: request("POST", p, [("X-TC-Action", "Describe\u00e9"),
                                                               ("X-TC-Version", "2019-07-22"), *_json(b"{}")], b"{}"),
    "negative Content-Length": lambda p: request("POST", p, [("Content-Length", "-1")], b"x"),
    "huge Content-Length": lambda p: request("POST", p, [("Content-Length", "9" * 30)], b"x"),
    "non-numeric Content-Length": lambda p: request("POST", p, [("Content-Length", "ten")], b"x"),
    "two Content-Lengths": lambda p: request("POST", p, [("Content-Length", "1"), ("Content-Length", "2")], b"xy"),
    "Content-Length + chunked": lambda p: request(
        "POST", p, [("Transfer-Encoding", "chunked"), ("Content-Length", "3")], b"3\r\nabc\r\n0\r\n\r\n"),
    "bad chunk size": lambda p: request("POST", p, [("Transfer-Encoding", "chunked")], b"zz\r\nabc\r\n0\r\n\r\n"),
    "unknown Transfer-Encoding": lambda p: request("POST", p, [("Transfer-Encoding", "rot13")], b"abc"),
    "gzip garbage": lambda p: request("POST", p, [("Content-Encoding", "gzip"), *_json(b"0123456789")], b"0123456789"),
    "deflate garbage": lambda p: request("POST", p, [("Content-Encoding", "deflate"), *_json(b"abcd")], b"abcd"),
    "br garbage": lambda p: request("POST", p, [("Content-Encoding", "br"), *_json(b"abcd")], b"abcd"),
    "unknown Content-Encoding": lambda p: request("POST", p, [("Content-Encoding", "x-zip"), *_json(b"{}")], b"{}"),
    "invalid JSON": lambda p: request("POST", p, _json(b"{nope"), b"{nope"),
    "JSON array": lambda p: request("POST", p, _json(b"[1,2]"), b"[1,2]"),
    "JSON 1e999": lambda p: request("POST", p, _json(b'{"a":1e999,"b":-0,"c":99999999999999999999999}'),
                                    b'{"a":1e999,"b":-0,"c":99999999999999999999999}'),
    "JSON nested 100k": lambda p: request("POST", p, _json(b"[" * 100_000 + b"]" * 100_000),
                                          b"[" * 100_000 + b"]" * 100_000),
    "JSON lone surrogate": lambda p: request("POST", p, _json(b'{"a":"\\ud800"}'), b'{"a":"\\ud800"}'),
    "UTF-16 JSON": lambda p: request("POST", p, _json('{"a":"b"}'.encode("utf-16"), "application/json; charset=utf-16"),
                                     '{"a":"b"}'.encode("utf-16")),
    "unknown charset": lambda p: request("POST", p, _json(b"a=%ff", "application/x-www-form-urlencoded; charset=nope"),
                                         b"a=%ff"),
    "Latin-1 form": lambda p: request("POST", p, _json(b"a=\xe9\xff", "application/x-www-form-urlencoded"),
                                      b"a=\xe9\xff"),
    "multipart, broken": lambda p: request("POST", p, _json(b"--xx\r\nzz", "multipart/form-data; boundary=xx"),
                                           b"--xx\r\nzz"),
    "multipart, no boundary": lambda p: request("POST", p, _json(b"abcd", "multipart/form-data"), b"abcd"),
    "Expect: banana": lambda p: request("POST", p, [("Expect", "banana"), *_json(b"{}")], b"{}"),
    "Upgrade: websocket": lambda p: request("GET", p, [("Upgrade", "websocket"), ("Connection", "Upgrade")]),
    "HTTP/2 preface": lambda p: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "TLS ClientHello": lambda p: bytes.fromhex("16030100a5010000a10303") + bytes(200),
    "binary garbage": lambda p: bytes(range(256)) * 8,
    "8 MB body": lambda p: request("POST", p, _json(b"x" * (8 << 20)), b"x" * (8 << 20)),
}
CUT: dict[str, Callable[[str], bytes]] = {  # the client hangs up in the middle
    "truncated body": lambda p: request("POST", p, [("Content-Length", "100"), ("Content-Type", "application/json")],
                                        b'{"a":'),
    "truncated headers": lambda p: f"POST {p} HTTP/1.1\r\nHost: x\r\nContent-Le".encode(),
    "truncated chunk": lambda p: request("POST", p, [("Transfer-Encoding", "chunked")], b"a\r\nabc"),
}
TARGETS = {
    "captcha": ["/", "/ticket", "/TCaptcha.js"],
    "solver": ["/in.php", "/res.php", "/site/submit"],
    "chat": ["/v4/openim/sendmsg?sdkappid=1400000000&identifier=administrator&usersig=x&random=1&contenttype=json"],
    "control": ["/rules", "/journal", "/captcha/tickets", "/chat/webhooks", "/decide", "/solver/config"],
}


@pytest.mark.parametrize("server", [*SERVICES, "control"])
def test_malformed_http_never_5xx_and_server_keeps_serving(host, log_trap, server):
    port = port_of(host, server)
    statuses: Counter[int | None] = Counter()
    for path in TARGETS[server]:
        for name, make in MALFORMED.items():
            answer = exchange(port, make(path))
            status = status_of(answer)
            statuses[status] += 1
            assert status is None or status < 500, (server, path, name, answer[:400])
            if status is None:  # no HTTP answer at all is only acceptable as a closed connection
                assert answer == b"" or answer.startswith(b"HTTP/0.9"), (server, path, name, answer[:200])
        for name, make in CUT.items():
            exchange(port, make(path), read=False)
        still_serving(host, server)
    print(f"\n{server}: {sum(statuses.values())} malformed requests, statuses {dict(statuses)}")
    assert statuses[400] > 0
    assert not log_trap.bad, log_trap.bad[:5]


def test_cut_connections_leave_no_pending_task_after_stop(tmp_path, log_trap):
    """Clients that hang up mid-request leave aiohttp handler tasks behind; a stopped host cancels
    them, so the garbage collector never reports "Task was destroyed but it is pending!" later, in
    whatever test happens to run then (it failed CI that way)."""
    for _ in range(6):
        with HostThread(run_dir=str(tmp_path), seed=3, hang_limit_s=2) as ht:
            port = port_of(ht, "captcha")
            for path in TARGETS["captcha"]:
                for make in MALFORMED.values():
                    exchange(port, make(path))
                for make in CUT.values():
                    exchange(port, make(path), read=False)
        gc.collect()
    assert not log_trap.bad, log_trap.bad[:3]


# --- 3. well-framed requests with hostile content, per endpoint ----------------------------------
PARAM_NAMES = ["key", "method", "action", "id", "ids", "json", "pingback", "soft_id", "body", "googlekey", "pageurl",
               "sdkappid", "identifier", "usersig", "random", "contenttype", "aid", "appid", "Ticket", "UserIp",
               "Randstr", "CaptchaType", "CaptchaAppId", "AppSecretKey", "BusinessId", "SceneId", "evil_level",
               "header_acao", "file", "textcaptcha", "lang", "To_Account", "MsgBody", "SyncOtherMachine"]
texts = st.one_of(st.text(max_size=20), st.sampled_from(["", "0", "-1", "1e999", "9" * 40, "null", "true", "[]",
                                                         "{}", "%ff", "\x00", "é", "1400000000", "administrator",
                                                         "get", "post", "userrecaptcha", "get2", "getbalance"]))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                                     st.floats(allow_nan=False), texts),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(PARAM_NAMES) | texts,
                                                                                c, max_size=4), max_leaves=12)
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=b0undary", "text/plain",
                 "application/octet-stream", "multipart/form-data", "", "*/*", "application/json;;;=", "x" * 300]
ACTIONS = ["DescribeCaptchaResult", "DescribeCaptchaMiniResult", "DescribeCaptchaAppIdInfo", "", "x" * 200,
           "Describe\u00e9", "../", "DescribeCaptchaResult\t"]


@st.composite
def hostile_requests(draw: Any, service: str) -> bytes:
    base = draw(st.sampled_from(TARGETS[service]).map(lambda t: t.split("?")[0]) |
                st.sampled_from(["/", "/v4/a/b", "/v4//", "/in.php/x", "/.%2e/", "/" + "a" * 3000]))
    method = draw(st.sampled_from(["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD",
                                   "PROPFIND"]))
    query = draw(st.dictionaries(st.sampled_from(PARAM_NAMES) | texts, texts, max_size=6))
    target = base + ("?" + urllib.parse.urlencode(query, encoding="utf-8", errors="surrogatepass") if query else "")
    headers: list[tuple[str, str]] = []
    if draw(st.booleans()):
        headers.append(("X-TC-Action", draw(st.sampled_from(ACTIONS))))
        headers.append(("X-TC-Version", draw(st.sampled_from(["2019-07-22", "", "2017-03-12", "9" * 40]))))
        headers.append(("X-TC-Timestamp", draw(st.sampled_from(["0", "-1", "9" * 40, "abc", "", "1e9", "1700000000"]))))
        headers.append(("Authorization", draw(st.sampled_from([
            "", "TC3-HMAC-SHA256", "TC3-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=host, Signature=00",
            "TC3-HMAC-SHA256 Credential=AKIDchaosHarnessCaptchaMock000000001/2020-01-01/captcha/tc3_request, "
            "SignedHeaders=content-type;host;" + "x;" * 200 + ", Signature=" + "f" * 64,
            "Bearer x", "TC3-HMAC-SHA256 Credential=////, SignedHeaders=;;, Signature=zz"]))))
    kind = draw(st.sampled_from(["json", "form", "bytes", "none", "multipart"]))
    if kind == "json":
        body = json.dumps(draw(json_values)).encode()
    elif kind == "form":
        body = urllib.parse.urlencode(draw(st.dictionaries(st.sampled_from(PARAM_NAMES) | texts, texts, max_size=6)),
                                      errors="surrogatepass").encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=2000))
    elif kind == "multipart":
        part = draw(st.binary(max_size=300))
        body = (b"--b0undary\r\nContent-Disposition: form-data; name=\"" + draw(st.sampled_from(PARAM_NAMES)).encode()
                + b"\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n" + part + b"\r\n--b0undary--\r\n")
    else:
        body = b""
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    if ctype:
        headers.append(("Content-Type", ctype))
    headers.append(("Content-Length", str(len(body))))
    return request(method, target, headers, body)


@pytest.mark.parametrize("service", SERVICES)
def test_hostile_content_to_each_mock_never_5xx(host, log_trap, service):
    port = port_of(host, service)
    statuses: Counter[int] = Counter()

    @settings(max_examples=120, **HYP)
    @given(raw=hostile_requests(service))
    def run(raw: bytes) -> None:
        answer = exchange(port, raw)
        status = status_of(answer)
        assert status is not None and status < 500, (raw[:300], answer[:400])
        statuses[status] += 1

    run()
    print(f"\n{service}: {sum(statuses.values())} hostile requests, statuses {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= 120
    still_serving(host, service)
    assert not log_trap.bad, log_trap.bad[:5]
