"""DescribeCaptchaResult through the official tencentcloud-sdk-python-captcha, unmodified, pointed at a
local endpoint the documented way (HttpProfile(protocol="http", endpoint=...)): the same arguments and
output as the Node.js, Go and Java clients beside it. Usage (a list of calls):
    python captcha.py '[{"endpoint": "127.0.0.1:PORT", "secretId": "...", "secretKey": "...",
                         "action": "DescribeCaptchaResult", "params": {...}}, ...]'
Prints one JSON line per call: {"ok": true, "response": {...}} or {"ok": false, "code", "message", "requestId"}.
"""

import json
import sys

from tencentcloud.captcha.v20190722 import captcha_client, models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile


def call(a: dict) -> dict:
    hp = HttpProfile(protocol=a.get("protocol", "http"), endpoint=a["endpoint"], reqTimeout=10)
    client = captcha_client.CaptchaClient(credential.Credential(a["secretId"], a["secretKey"]), "",
                                          ClientProfile(httpProfile=hp))
    action = a.get("action", "DescribeCaptchaResult")
    req = getattr(models, f"{action}Request")()
    req.from_json_string(json.dumps(a["params"]))
    try:
        return {"ok": True, "response": json.loads(getattr(client, action)(req).to_json_string())}
    except TencentCloudSDKException as e:
        return {"ok": False, "code": e.get_code(), "message": e.get_message(), "requestId": e.get_request_id()}


if __name__ == "__main__":
    for a in json.loads(sys.argv[1]):
        print(json.dumps(call(a)), flush=True)
