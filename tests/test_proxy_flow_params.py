"""raw_request: the proxy's action/params for services the host does not mock agree with the mocks'
own parsers (checked against the real mocks' ``parse`` through ``/decide``'s request stubs)."""

import asyncio

import pytest

from harness.host import MockHost
from harness.proxy.decide import parse_request
from harness.proxy.raw_request import action_and_params

BOUNDARY = "XyZ"
MULTIPART = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"method\"\r\n\r\npost\r\n"
             f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk1\r\n"
             f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.png\"\r\n"
             f"Content-Type: image/png\r\n\r\n0123456789\r\n--{BOUNDARY}--\r\n").encode()

CASES = [
    ("solver", "GET", "/in.php?key=k&method=userrecaptcha&googlekey=g", {}, b""),
    ("solver", "POST", "/in.php?json=1", {"Content-Type": "application/x-www-form-urlencoded"},
     b"key=k&method=base64&body=aGk="),
    ("solver", "POST", "/in.php", {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, MULTIPART),
    ("solver", "GET", "/res.php?key=k&action=get&id=5", {}, b""),
    ("captcha", "POST", "/", {"X-TC-Action": "DescribeCaptchaResult", "Content-Type": "application/json"},
     b'{"CaptchaType": 9, "Ticket": "t", "CaptchaAppId": 190000001}'),
    ("captcha", "POST", "/", {"Content-Type": "application/json"}, b"{}"),
    ("chat", "POST", "/v4/openim/sendmsg?sdkappid=1400000001&identifier=admin",
     {"Content-Type": "application/json"}, b'{"To_Account": "u2", "MsgRandom": 7}'),
]


@pytest.mark.parametrize("service,method,target,headers,body", CASES)
def test_same_action_and_params_as_the_mock(tmp_path, service, method, target, headers, body):
    async def both():
        host = MockHost(services={service: {}}, run_dir=str(tmp_path))
        raw = {"method": method, "path": target, "headers": [[k, v] for k, v in headers.items()],
               "body_b64": __import__("base64").b64encode(body).decode()}
        try:
            by_mock = await parse_request(host, service, raw)
        finally:
            host.journal.close()
        path, _, query = target.partition("?")
        from urllib.parse import parse_qsl
        ours = action_and_params(service, method, path, parse_qsl(query), headers, body)
        return by_mock[:2], ours
    by_mock, ours = asyncio.run(both())
    assert ours == by_mock


def test_unknown_service_uses_the_path_and_any_body():
    assert action_and_params(None, "POST", "/a/b", [("q", "1")], {"content-type": "application/json"},
                             b'{"x": 2}') == ("a/b", {"q": "1", "x": 2})
    assert action_and_params(None, "GET", "/", [], {}, b"") == ("root", {})
    assert action_and_params(None, "POST", "/f", [], {"Content-Type": "application/x-www-form-urlencoded"},
                             b"a=1&b=") == ("f", {"a": "1", "b": ""})
