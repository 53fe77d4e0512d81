"""Tencent Chat mock REST API with real clients: requests + UserSigs from the official tls-sig-api-v2."""

import base64
import json
import logging
import socket
import time
import zlib

import pytest
import requests
import TLSSigAPIv2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.host import HostThread
from harness.journal import read_events

APP, KEY, ADMIN = 1400000000, "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e", "administrator"
TEXT = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]


class Client:
    """A backend calling the Chat REST API the documented way."""

    def __init__(self, ht, identifier=ADMIN, app=APP, key=KEY):
        self.ht, self.url, self.control = ht, ht.host.urls["chat"], ht.host.urls["control"]
        self.identifier, self.app, self.key = identifier, app, key
        self.session = requests.Session()
        self.n = 0

    def query(self, **override):
        self.n += 1
        q = {"sdkappid": self.app, "identifier": self.identifier,
             "usersig": TLSSigAPIv2.TLSSigAPIv2(self.app, self.key).gen_sig(self.identifier),
             "random": 1000 + self.n, "contenttype": "json"}
        q.update(override)
        return {k: v for k, v in q.items() if v is not None}

    def call(self, path, body=None, **override):
        r = self.session.post(f"{self.url}/v4/{path}", params=self.query(**override),
                              json={} if body is None else body, timeout=10)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "application/json"
        return r.json()

    def send(self, to="bob", rnd=1, q=None, **more):
        """openim/sendmsg; ``q`` overrides query parameters, ``more`` adds body fields."""
        return self.call("openim/sendmsg", {"To_Account": to, "MsgRandom": rnd, "MsgBody": TEXT, **more}, **(q or {}))

    def config(self, **patch):
        r = requests.put(self.control + "/chat/config", json=patch, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def rules(self, *rules):
        r = requests.post(self.control + "/rules", json=list(rules), timeout=5)
        assert r.status_code == 201, r.text
        return r.json()["ids"]

    def events(self, kind=None):
        return [e for e in read_events(self.ht.host.journal.read_since(0)) if kind is None or e.kind == kind]

    def delivered(self):
        return self.events("message")


@pytest.fixture()
def chat(tmp_path):
    with HostThread(services={"chat": {}}, run_dir=str(tmp_path), seed=3) as ht:
        client = Client(ht)
        yield client
        client.session.close()


def test_sendmsg_with_an_official_usersig(chat):
    r = chat.send("bob", 77, MsgSeq=12)
    assert r["ActionStatus"] == "OK" and r["ErrorCode"] == 0 and r["ErrorInfo"] == ""
    assert r["RequestId"].startswith("Id-") and "-O-Seq-" in r["RequestId"]
    assert r["MsgKey"] == f"12_77_{r['MsgTime']}" and abs(r["MsgTime"] - time.time()) < 60
    (msg,) = chat.delivered()
    assert (msg.action, msg["from"], msg["to"], msg["random"], msg["body"]) == ("openim/sendmsg", ADMIN, "bob", 77, TEXT)
    assert msg["msg_key"] == r["MsgKey"]
    req = chat.events("request")[-1]
    assert req["params"]["To_Account"] == "bob" and req["params"]["sdkappid"] == str(APP)
    listed = requests.get(chat.control + "/chat/messages", timeout=5).json()["messages"]
    assert [m["msg_key"] for m in listed] == [r["MsgKey"]]


BAD_SIGS = {
    "garbage": ({"usersig": "eJyrVgrxCdYrSy1SslJQMtIzUNJR"}, 70003),
    "expired": ({"usersig": TLSSigAPIv2.TLSSigAPIv2(APP, KEY).gen_sig(ADMIN, 0)}, 70001),
    "wrong_key": ({"usersig": TLSSigAPIv2.TLSSigAPIv2(APP, "other-key").gen_sig(ADMIN)}, 70009),
    "sig_for_alice": ({"usersig": TLSSigAPIv2.TLSSigAPIv2(APP, KEY).gen_sig("alice")}, 70013),
    "sig_for_other_app": ({"usersig": TLSSigAPIv2.TLSSigAPIv2(APP + 1, KEY).gen_sig(ADMIN)}, 70014),
    "no_sdkappid": ({"sdkappid": None}, 60012),
    "unknown_sdkappid": ({"sdkappid": 1400009999}, 60006),
    "no_usersig": ({"usersig": None}, 60004),
    "no_identifier": ({"identifier": None}, 60004),
}


@pytest.mark.parametrize("case", sorted(BAD_SIGS))
def test_auth_failures_use_the_real_codes(chat, case):
    override, code = BAD_SIGS[case]
    r = chat.call("openim/sendmsg", {"To_Account": "bob", "MsgRandom": 1, "MsgBody": TEXT}, **override)
    assert (r["ActionStatus"], r["ErrorCode"]) == ("FAIL", code)
    assert r["ErrorInfo"]
    assert chat.delivered() == []


def test_tampered_expiry_and_non_admin(chat):
    doc = json.loads(zlib.decompress(base64.b64decode(
        TLSSigAPIv2.TLSSigAPIv2(APP, KEY).gen_sig(ADMIN, 1).replace("*", "+").replace("-", "/").replace("_", "="))))
    doc["TLS.expire"] = 999999
    forged = base64.b64encode(zlib.compress(json.dumps(doc).encode())).decode()
    forged = forged.replace("+", "*").replace("/", "-").replace("=", "_")
    assert chat.send(q={"usersig": forged})["ErrorCode"] == 70009
    alice = Client(chat.ht, identifier="alice")
    assert alice.send()["ErrorCode"] == 60010
    chat.config(other_admins=["alice"])
    assert alice.send()["ErrorCode"] == 0


def test_error_codes_are_configurable(chat):
    chat.config(error_codes={"sig_expired": 70052})
    expired = TLSSigAPIv2.TLSSigAPIv2(APP, KEY).gen_sig(ADMIN, 0)
    assert chat.send(q={"usersig": expired})["ErrorCode"] == 70052
    r = requests.put(chat.control + "/chat/config", json={"error_codes": {"no_such": 1}}, timeout=5)
    assert r.status_code == 400 and "no_such" in r.json()["error"]


def test_usersig_route_gives_a_working_sig(chat):
    sig = requests.get(chat.control + "/chat/usersig", timeout=5).json()["usersig"]
    assert chat.send(q={"usersig": sig})["ErrorCode"] == 0


def test_config_defaults_and_webhook_url_settable(chat):
    cfg = requests.get(chat.control + "/chat/config", timeout=5).json()
    assert (cfg["sdkappid"], cfg["secret_key"], cfg["admin_identifier"], cfg["webhook_url"]) == (APP, KEY, ADMIN, None)
    assert cfg["webhook_timeout_s"] == 2.0 and cfg["qps_limits"]["openim/sendmsg"] == 200
    assert chat.config(webhook_url="http://127.0.0.1:9/cb", webhook_token="t")["webhook_url"] == "http://127.0.0.1:9/cb"
    for bad in ({"webhook_url": "ftp://x"}, {"qps_limits": {"sendmsg": 5}}, {"sdkappid": "abc"}, {"nope": 1}):
        r = requests.put(chat.control + "/chat/config", json=bad, timeout=5)
        assert r.status_code == 400, bad
    assert requests.post(chat.control + "/reset", timeout=5).status_code == 200
    assert requests.get(chat.control + "/chat/config", timeout=5).json()["webhook_url"] is None


def test_c2c_dedup_by_msgrandom_within_the_window(chat):
    first, again = chat.send("bob", 5), chat.send("bob", 5)
    assert first["ErrorCode"] == again["ErrorCode"] == 0
    assert (again["MsgKey"], again["MsgTime"]) == (first["MsgKey"], first["MsgTime"])
    assert chat.send("carol", 5)["MsgKey"] != first["MsgKey"]  # other recipient: not a duplicate
    assert chat.send("bob", 6)["ErrorCode"] == 0
    assert [(m["to"], m["random"]) for m in chat.delivered()] == [("bob", 5), ("carol", 5), ("bob", 6)]
    (dup,) = chat.events("message_refused")
    assert dup["reason"] == "duplicate" and dup["duplicate_of"] == first["MsgKey"]
    chat.config(c2c_dedup_window_s=0.2)
    time.sleep(0.3)
    assert chat.send("bob", 5)["ErrorCode"] == 0
    assert len(chat.delivered()) == 4  # outside the window the same MsgRandom is a new message


def test_batchsendmsg_journals_one_message_per_recipient(chat):
    r = chat.call("openim/batchsendmsg", {"To_Account": ["a", "b", "c", "a"], "MsgRandom": 9, "MsgBody": TEXT})
    assert r["ErrorCode"] == 0 and "MsgKey" in r and "ErrorList" not in r
    assert sorted(m["to"] for m in chat.delivered()) == ["a", "b", "c"]
    chat.call("openim/batchsendmsg", {"To_Account": ["a", "d"], "MsgRandom": 9, "MsgBody": TEXT})
    assert sorted(m["to"] for m in chat.delivered()) == ["a", "b", "c", "d"]
    assert chat.call("openim/batchsendmsg", {"To_Account": [f"u{i}" for i in range(501)], "MsgRandom": 1,
                                             "MsgBody": TEXT})["ErrorCode"] == 90011
    chat.config(require_accounts=True)
    assert chat.call("im_open_login_svc/account_import", {"UserID": "e"})["ErrorCode"] == 0
    r = chat.call("openim/batchsendmsg", {"To_Account": ["e", "ghost"], "MsgRandom": 2, "MsgBody": TEXT})
    assert r["ErrorList"] == [{"To_Account": "ghost", "ErrorCode": 90012}]
    assert sorted(m["to"] for m in chat.delivered()) == ["a", "b", "c", "d", "e"]


def test_accounts(chat):
    assert chat.call("im_open_login_svc/account_import", {"UserID": "bob", "Nick": "Bob"})["ErrorCode"] == 0
    assert chat.call("im_open_login_svc/account_import", {"UserID": "x" * 33})["ErrorCode"] == 70402
    assert chat.call("im_open_login_svc/account_import", {})["ErrorCode"] == 70402
    r = chat.call("im_open_login_svc/multiaccount_import", {"Accounts": ["c1", "", 5, "c2"]})
    assert r["ErrorCode"] == 0 and r["FailAccounts"] == ["", 5]
    chat.config(require_accounts=True)
    assert chat.send("bob")["ErrorCode"] == 0
    assert chat.send("c2", 2)["ErrorCode"] == 0
    assert chat.send("nobody", 3)["ErrorCode"] == 90012
    assert [m["to"] for m in chat.delivered()] == ["bob", "c2"]


def test_group_messages_seq_and_dedup(chat):
    gid = chat.call("group_open_http_svc/create_group", {"Type": "Public", "Name": "g"})["GroupId"]
    assert gid.startswith("@TGS#")
    body = {"GroupId": gid, "Random": 8, "MsgBody": TEXT}
    one, dup = chat.call("group_open_http_svc/send_group_msg", body), chat.call("group_open_http_svc/send_group_msg", body)
    assert one["ErrorCode"] == 0 and one["MsgSeq"] == 1 and (dup["MsgSeq"], dup["MsgTime"]) == (1, one["MsgTime"])
    two = chat.call("group_open_http_svc/send_group_msg", {**body, "Random": 9})
    assert two["MsgSeq"] == 2
    assert [(m["group"], m["msg_seq"]) for m in chat.delivered()] == [(gid, 1), (gid, 2)]
    assert chat.call("group_open_http_svc/send_group_msg", {"GroupId": gid, "MsgBody": TEXT})["ErrorCode"] == 10004
    assert chat.call("group_open_http_svc/create_group", {"Type": "Nope", "Name": "g"})["ErrorCode"] == 10004
    chat.config(require_groups=True)
    assert chat.call("group_open_http_svc/send_group_msg", {**body, "GroupId": "@TGS#none"})["ErrorCode"] == 10010


def test_rule_errors_use_the_chat_shape(chat):
    chat.rules({"match": {"service": "chat", "action": "openim/sendmsg", "params": {"To_Account": "bob"}},
                "effect": {"error": "60011"}, "schedule": {"times": 1}},
               {"match": {"service": "chat", "action": "openim/sendmsg", "params": {"To_Account": "eve"}},
                "effect": {"error": "command_rate_limit", "message": "slow down"}},
               {"match": {"service": "chat", "action": "openim/sendmsg", "params": {"To_Account": "zed"}},
                "effect": {"error": "Whatever"}})
    r = chat.send("bob")
    assert (r["ActionStatus"], r["ErrorCode"]) == ("FAIL", 60011) and "RequestId" in r
    assert chat.send("bob")["ErrorCode"] == 0  # times: 1
    r = chat.send("eve", 4)
    assert (r["ErrorCode"], r["ErrorInfo"]) == (60007, "slow down")
    assert chat.send("zed")["ErrorCode"] == 90994
    assert [m["to"] for m in chat.delivered()] == ["bob"]


def test_rate_limit_errors_and_recovery(chat):
    chat.config(qps_limits={"openim/sendmsg": 5}, error_codes={"command_rate_limit": 60018})
    t0 = time.monotonic()
    codes = [chat.send("bob", i)["ErrorCode"] for i in range(10)]
    elapsed = time.monotonic() - t0
    assert codes[:5] == [0] * 5
    if elapsed < 0.9:  # all ten inside one window (always, unless the machine stalls)
        assert codes[5:] == [60018] * 5
    assert set(codes) <= {0, 60018}
    time.sleep(1.1)
    assert chat.send("bob", 100)["ErrorCode"] == 0
    assert len(chat.delivered()) == codes.count(0) + 1
    # other commands have their own budget
    assert chat.call("im_open_login_svc/account_import", {"UserID": "x"})["ErrorCode"] == 0


def test_app_wide_limit(chat):
    chat.config(app_qps_limit=3)
    t0 = time.monotonic()
    codes = [chat.call("im_open_login_svc/account_import", {"UserID": f"u{i}"})["ErrorCode"] for i in range(6)]
    assert codes[:3] == [0, 0, 0]
    if time.monotonic() - t0 < 0.9:
        assert codes[3:] == [60011] * 3


MALFORMED = [
    ("GET", "/v4/openim/sendmsg", None, None, 60002),
    ("PUT", "/v4/openim/sendmsg", None, b"{}", 60002),
    ("POST", "/v4/openim/sendmsg", None, b"{not json", 60003),
    ("POST", "/v4/openim/sendmsg", None, b"[1, 2]", 60003),
    ("POST", "/v4/openim/sendmsg", None, b"\xff\xfe\x00", 60003),
    ("POST", "/v4/openim/sendmsg", None, b'"x"', 60003),
    ("POST", "/v4/openim/sendmsg", None, b"", 90003),
    ("POST", "/v4/openim/sendmsg", None, b'{"To_Account": 5, "MsgRandom": 1, "MsgBody": []}', 60015),
    ("POST", "/v4/openim/sendmsg", None, b'{"To_Account": "b", "MsgRandom": 1099511627776, "MsgBody": []}', 90005),
    ("POST", "/v4/openim/sendmsg", None, b'{"To_Account": "b", "MsgRandom": true, "MsgBody": []}', 90005),
    ("POST", "/v4/openim/sendmsg", None, b'{"To_Account": "b", "MsgRandom": 1, "MsgBody": {"a": 1}}', 90002),
    ("POST", "/v4/openim/sendmsg", None, b'{"To_Account": "b", "MsgRandom": 1, "MsgBody": [5]}', 90002),
    ("POST", "/v4/openim/batchsendmsg", None, b'{"To_Account": "b"}', 90003),
    ("POST", "/v4/group_open_http_svc/send_group_msg", None, b'{"GroupId": [], "Random": 1}', 10004),
    ("POST", "/v4/openim/no_such_command", None, b"{}", 60009),
    ("POST", "/v4/openim/sendmsg", {"sdkappid": "abc"}, b"{}", 60006),
    ("POST", "/v4/openim/sendmsg", {"usersig": "%%%"}, b"{}", 70003),
    ("POST", "/v4/openim/sendmsg", {"usersig": "x" * 6000}, b"{}", 70003),
]


@pytest.mark.parametrize("method,path,query,body,code", MALFORMED)
def test_malformed_requests_get_real_errors_never_500(chat, method, path, query, body, code):
    r = requests.request(method, chat.url + path, params=chat.query(**(query or {})), data=body, timeout=5)
    assert r.status_code == 200, r.text
    assert (r.json()["ActionStatus"], r.json()["ErrorCode"]) == ("FAIL", code)


def test_outside_v4_and_garbage_http_are_4xx(chat):
    for path in ("/", "/v4", "/v4/openim", "/v4/openim/sendmsg/extra", "/v4/../etc/passwd", "/v4/a b/c"):
        r = requests.post(chat.url + path, data=b"{}", timeout=5)
        assert 400 <= r.status_code < 500, (path, r.status_code)
    host, port = chat.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"\x16\x03\x01 garbage that is not HTTP\r\n\r\n")
        reply = s.recv(200)
    assert reply.split(b" ")[1].startswith(b"4"), reply
    r = requests.post(chat.url + "/v4/openim/sendmsg", params={"usersig": "x" * 9000}, data=b"{}", timeout=5)
    assert r.status_code == 400  # request line longer than the server takes
    assert not [e for e in chat.events("response") if (e["status"] or 0) >= 500]


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
                           | st.text(max_size=40), lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=12), kids, max_size=4), max_leaves=12)
FIELDS = ["To_Account", "From_Account", "MsgRandom", "MsgSeq", "MsgBody", "GroupId", "Random", "UserID",
          "Accounts", "Type", "Name", "ForbidCallbackControl", "CloudCustomData", "OnlineOnlyFlag"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["openim/sendmsg", "openim/batchsendmsg", "im_open_login_svc/account_import",
                                "im_open_login_svc/multiaccount_import", "group_open_http_svc/create_group",
                                "group_open_http_svc/send_group_msg"]),
       body=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6))
def test_fuzzed_bodies_always_get_a_chat_answer(chat, command, body):
    r = chat.session.post(f"{chat.url}/v4/{command}", params=chat.query(), data=json.dumps(body), timeout=5)
    assert r.status_code == 200
    data = r.json()
    assert data["ActionStatus"] in ("OK", "FAIL") and isinstance(data["ErrorCode"], int)
    assert (data["ActionStatus"] == "OK") == (data["ErrorCode"] == 0)


def test_body_that_fails_its_content_encoding(chat, caplog):
    host, port = chat.url.removeprefix("http://").split(":")
    raw = (b"POST /v4/openim/sendmsg?sdkappid=1400000000 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
           b"Content-Encoding: gzip\r\n\r\n0123456789")
    with caplog.at_level(logging.ERROR, logger="aiohttp"):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(raw)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        time.sleep(0.1)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["ErrorCode"] == 60002
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
