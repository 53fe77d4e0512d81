"""A request signed over its Host header (Tencent Cloud's TC3) still verifies at the mock after the
mitm proxy: the proxy keeps the Host the client sent when its upstreams are local mocks."""

import json

import requests

from harness.host import HostThread
from harness.proxy.mitm import MitmProxy, MitmRoute
from mocks.captcha.config import DEFAULT_APP_ID, DEFAULT_APP_SECRET_KEY, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
from mocks.captcha.signature import sign_headers


def test_a_tc3_signed_call_through_the_mitm_proxy_verifies(tmp_path):
    with HostThread(services={"captcha": {}}, run_dir=str(tmp_path)) as ht:
        route = MitmRoute("integration->captcha", "captcha", ht.host.urls["captcha"])
        with MitmProxy([route], ht.host.urls["control"], run_dir=str(tmp_path)) as mitm:
            url = mitm.urls["integration->captcha"]
            body = json.dumps({"CaptchaType": 9, "Ticket": "t03unknown", "UserIp": "127.0.0.1", "Randstr": "@x",
                               "CaptchaAppId": DEFAULT_APP_ID, "AppSecretKey": DEFAULT_APP_SECRET_KEY}).encode()
            headers = sign_headers(secret_id=DEFAULT_SECRET_ID, secret_key=DEFAULT_SECRET_KEY,
                                   host=url.split("//", 1)[1], action="DescribeCaptchaResult", payload=body)
            answer = requests.post(url + "/", data=body, headers=headers, timeout=10).json()["Response"]
    assert "Error" not in answer, answer            # was AuthFailure.SignatureFailure: Host rewritten
    assert answer["CaptchaCode"] == 15              # an unknown ticket: decided by the API, signature good
