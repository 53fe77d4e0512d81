"""The solver mock's in.php / res.php surface, with raw HTTP on real sockets."""

import base64
import socket
import struct
import time
import zlib

import pytest
import requests

from harness.host import HostThread
from harness.journal import read_events
from mocks.solver import DEFAULT_KEY as KEY
from mocks.solver import SECOND_KEY

FAST = {"solve_min_s": 0.02, "solve_max_s": 0.08}
RECAPTCHA = {"method": "userrecaptcha", "googlekey": "6Le-site", "pageurl": "https://example.test/login"}


def png(size: int = 400) -> bytes:
    """A valid PNG of at least ``size`` bytes (noise, so it doesn't compress away)."""
    w = max(4, int(size ** 0.5))
    raw = b"".join(b"\x00" + bytes((x * 7 + y * 13) % 256 for x in range(w * 3)) for y in range(w))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, w, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))


@pytest.fixture()
def solver(tmp_path):
    with HostThread(services={"solver": dict(FAST)}, run_dir=str(tmp_path), seed=7) as ht:
        yield ht


def url(ht, path=""):
    return ht.host.urls["solver"] + path


def control(ht, path):
    return ht.host.urls["control"] + path


def events(ht, kind=None):
    return [e for e in read_events(ht.host.journal.read_since(0)) if kind is None or e.kind == kind]


def submit(ht, key=KEY, json=True, verb="GET", **params):
    fields = {"key": key, **(RECAPTCHA if not params.get("method") else {}), **params}
    if json:
        fields["json"] = 1
    if verb == "GET":
        r = requests.get(url(ht, "/in.php"), params=fields, timeout=5)
    else:
        r = requests.post(url(ht, "/in.php"), data=fields, timeout=5)
    assert r.status_code == 200, r.text
    return r.json() if json else r.text


def new_task(ht, **params):
    r = submit(ht, **params)
    assert r["status"] == 1, r
    return r["request"]


def res(ht, key=KEY, json=True, **params):
    fields = {"key": key, **params}
    if json:
        fields["json"] = 1
    r = requests.get(url(ht, "/res.php"), params=fields, timeout=5)
    assert r.status_code == 200, r.text
    return r.json() if json else r.text


def wait_solved(ht, tid, key=KEY, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = res(ht, key=key, action="get", id=tid)
        if r.get("request") != "CAPCHA_NOT_READY":
            return r
        time.sleep(0.02)
    raise AssertionError(f"task {tid} not done in {timeout}s")


def put_config(ht, **patch):
    r = requests.put(control(ht, "/solver/config"), json=patch, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def add_rules(ht, *rules):
    r = requests.post(control(ht, "/rules"), json=list(rules), timeout=5)
    assert r.status_code == 201, r.text
    return r.json()["ids"]


def test_submit_poll_plain_and_json_get_and_post(solver):
    put_config(solver, solve_distribution="fixed", solve_min_s=0.8, solve_max_s=0.8)
    j = submit(solver)                                   # GET, json=1
    assert j["status"] == 1 and isinstance(j["request"], int)  # userrecaptcha: integer id
    plain = submit(solver, json=False, verb="POST")      # POST form, plain
    assert plain.startswith("OK|") and plain[3:].isdigit()
    ts = submit(solver, method="turnstile", sitekey="0x4AAA", pageurl="https://e.test")
    assert isinstance(ts["request"], str) and ts["request"].isdigit()  # other methods: string id
    assert res(solver, json=False, action="get", id=j["request"]) == "CAPCHA_NOT_READY"  # sic
    assert res(solver, action="get", id=plain[3:]) == {"status": 0, "request": "CAPCHA_NOT_READY"}
    solved = wait_solved(solver, j["request"])
    assert solved["status"] == 1 and solved["request"].startswith("03")
    other = wait_solved(solver, plain[3:])["request"]
    assert res(solver, json=False, action="get", id=plain[3:]) == "OK|" + other
    assert wait_solved(solver, ts["request"])["request"].startswith("0.")
    sols = {e["task"]: e for e in events(solver, "solution")}
    assert sols[j["request"]]["token"] == solved["request"] and sols[j["request"]]["key"] == KEY
    assert sols[j["request"]]["outcome"] == "solved"
    assert len({e["token"] for e in sols.values()}) == len(sols) == 3


def test_requests_are_journaled_with_action_and_all_params(solver):
    submit(solver, verb="POST", soft_id="42")
    req = [e for e in events(solver, "request") if e.action == "in.php"][-1]
    assert req["params"]["method"] == "userrecaptcha" and req["params"]["soft_id"] == "42"
    assert req["params"]["key"] == KEY and req["method"] == "POST"
    res(solver, action="getbalance")
    assert [e for e in events(solver, "request") if e.action == "res.php"][-1]["params"]["action"] == "getbalance"


def test_rule_errors_in_the_requested_shape(solver):
    add_rules(solver,
              {"match": {"service": "solver", "action": "in.php", "params": {"method": "userrecaptcha"}},
               "effect": {"error": "ERROR_NO_SLOT_AVAILABLE"}, "schedule": {"times": 2}},
              {"match": {"service": "solver", "action": "res.php", "params": {"action": "get"}},
               "effect": {"error": "ERROR_CAPTCHA_UNSOLVABLE", "message": "workers gave up"},
               "schedule": {"times": 1}},
              {"match": {"service": "solver", "action": "res.php", "params": {"action": "getbalance"}},
               "effect": {"error": "ERROR_UPLOAD", "content_type": "text/plain"}, "schedule": {"times": 1}})
    assert submit(solver) == {"status": 0, "request": "ERROR_NO_SLOT_AVAILABLE"}
    assert submit(solver, json=False) == "ERROR_NO_SLOT_AVAILABLE"
    tid = submit(solver)["request"]  # times exhausted → real answer
    assert res(solver, action="get", id=tid) == {"status": 0, "request": "ERROR_CAPTCHA_UNSOLVABLE",
                                                 "error_text": "workers gave up"}
    r = requests.get(url(solver, "/res.php"), params={"key": KEY, "action": "getbalance", "json": 1}, timeout=5)
    assert r.text == "ERROR_UPLOAD" and r.headers["Content-Type"].startswith("text/plain")  # plain despite json=1
    assert res(solver, action="getbalance") == {"status": 1, "request": "10.00"}


def test_key_errors_and_ip_ban(solver):
    for path in ("/in.php", "/res.php"):
        r = requests.get(url(solver, path), params={"key": "short", "action": "get", "id": "1", "json": 1}, timeout=5)
        assert r.json() == {"status": 0, "request": "ERROR_WRONG_USER_KEY"}
        r = requests.get(url(solver, path), params={"key": "f" * 32, "action": "get", "id": "1"}, timeout=5)
        assert r.text == "ERROR_KEY_DOES_NOT_EXIST"
    put_config(solver, ban_after_bad_keys=2, ban_s=1.0, error_text=True)
    assert submit(solver, key="x" * 31)["request"] == "ERROR_WRONG_USER_KEY"
    assert submit(solver, key="x" * 32)["request"] == "ERROR_KEY_DOES_NOT_EXIST"
    banned = submit(solver)  # even with the right key now
    assert banned["request"] == "IP_BANNED" and banned["error_text"]
    time.sleep(1.05)
    assert submit(solver)["status"] == 1


def test_thread_cap_replies_and_queueing(solver):
    # SECOND_KEY has threads=1; solving takes 1 s
    put_config(solver, solve_distribution="fixed", solve_min_s=1.0, solve_max_s=1.0)
    first = submit(solver, key=SECOND_KEY)["request"]
    threads = requests.post(url(solver, "/res.php"), data={"key": SECOND_KEY, "action": "threadsinfo", "json": 1},
                            timeout=5).json()
    assert threads == {"status": 1, "threads": 1, "working_threads": 1}
    assert submit(solver, key=SECOND_KEY)["request"] == "ERROR_ZERO_BALANCE"   # default (CaptchaAI docs)
    put_config(solver, thread_cap_reply="ERROR_NO_SLOT_AVAILABLE")
    assert submit(solver, key=SECOND_KEY, json=False) == "ERROR_NO_SLOT_AVAILABLE"
    assert submit(solver)["status"] == 1                                        # other key unaffected
    put_config(solver, thread_cap_reply="queue")
    second = submit(solver, key=SECOND_KEY)["request"]
    wait_solved(solver, first, key=SECOND_KEY)
    wait_solved(solver, second, key=SECOND_KEY)
    sols = {e["task"]: e for e in events(solver, "solution")}
    assert sols[second].t - sols[first].t >= 0.9  # started only when the first freed its thread


def test_zero_balance_and_getbalance(solver):
    put_config(solver, keys={KEY: {"threads": 5, "balance": 0}})
    assert submit(solver)["request"] == "ERROR_ZERO_BALANCE"
    assert res(solver, json=False, action="getbalance") == "0.00"
    put_config(solver, keys={KEY: {"threads": 5, "balance": 1.23456}})
    assert res(solver, action="getbalance") == {"status": 1, "request": "1.23456"}


def test_poll_errors_ttl_and_bulk(solver):
    assert res(solver, action="get", id="abc")["request"] == "ERROR_WRONG_ID_FORMAT"
    assert res(solver, action="get", id="123")["request"] == "ERROR_WRONG_CAPTCHA_ID"
    assert res(solver, action="")["request"] == "ERROR_EMPTY_ACTION"
    a, b = submit(solver)["request"], submit(solver)["request"]
    assert res(solver, key=SECOND_KEY, action="get", id=a)["request"] == "ERROR_WRONG_CAPTCHA_ID"  # not its task
    bulk = res(solver, json=False, action="get", ids=f"{a},{b},5")
    assert bulk.split("|")[2] == "ERROR_WRONG_CAPTCHA_ID" and len(bulk.split("|")) == 3
    long_ids = ",".join([str(a)] * 300)
    assert len(res(solver, json=False, action="get", ids=long_ids).split("|")) == 300
    assert [e for e in events(solver, "request") if e.action == "res.php"][-1]["params"]["ids"] == long_ids
    ta, tb = wait_solved(solver, a)["request"], wait_solved(solver, b)["request"]
    assert res(solver, action="get", ids=f"{b},{a}") == {"status": 1, "request": f"{tb}|{ta}"}
    put_config(solver, task_ttl_s=0.2)
    time.sleep(0.25)
    assert res(solver, action="get", id=a)["request"] == "ERROR_WRONG_CAPTCHA_ID"


def test_unsolvable_by_sitekey_number_and_probability(tmp_path):
    cfg = {**FAST, "unsolvable_sitekeys": ["bad-key"], "unsolvable_tasks": [2]}
    with HostThread(services={"solver": cfg}, run_dir=str(tmp_path), seed=7) as ht:
        t1 = submit(ht, googlekey="bad-key")["request"]
        t2 = submit(ht)["request"]
        t3 = submit(ht)["request"]
        assert wait_solved(ht, t1) == {"status": 0, "request": "ERROR_CAPTCHA_UNSOLVABLE"}
        assert wait_solved(ht, t2)["request"] == "ERROR_CAPTCHA_UNSOLVABLE"
        assert wait_solved(ht, t3)["status"] == 1
        outcomes = {e["task"]: (e["outcome"], e["token"]) for e in events(ht, "solution")}
        assert outcomes[t1] == ("unsolvable", None) and outcomes[t3][0] == "solved"


def _run(tmp_path, seed, n=30):
    cfg = {"solve_distribution": "fixed", "solve_min_s": 0, "solve_max_s": 0, "unsolvable_probability": 0.3,
           "keys": {KEY: {"threads": 100}}}
    with HostThread(services={"solver": cfg}, run_dir=str(tmp_path / f"s{seed}-{n}"), seed=seed) as ht:
        ids = [new_task(ht) for _ in range(n)]
        return [(i, wait_solved(ht, i)["request"]) for i in ids]


def test_same_seed_same_ids_tokens_and_unsolvables(tmp_path):
    a, b, c = _run(tmp_path, 11), _run(tmp_path, 11, 30), _run(tmp_path, 12)
    assert a == b
    assert [x for x in a if x[1] == "ERROR_CAPTCHA_UNSOLVABLE"]  # p=0.3 over 30 tasks
    assert 3 <= sum(x[1] == "ERROR_CAPTCHA_UNSOLVABLE" for x in a) <= 20
    assert {x[0] for x in a}.isdisjoint({x[0] for x in c}) and a[0][1] != c[0][1]


def test_solve_times_follow_config_and_time_scale(tmp_path):
    cfg = {"solve_min_s": 0.1, "solve_max_s": 0.2, "time_scale": 0.5, "keys": {KEY: {"threads": 100}}}
    with HostThread(services={"solver": cfg}, run_dir=str(tmp_path), seed=3, time_scale=2.0) as ht:
        ids = [new_task(ht) for _ in range(10)]
        for i in ids:
            wait_solved(ht, i)
        sols = events(ht, "solution")
        assert all(0.1 <= e["solve_s"] <= 0.2 for e in sols)       # ×0.5 ×2.0
        assert len(sols) == 10 and len({e["solve_s"] for e in sols}) > 5   # drawn, not constant


def test_methods_required_params_hcaptcha_switch_and_enterprise(solver):
    assert submit(solver, method="userrecaptcha", pageurl="https://x")["request"] == "ERROR_GOOGLEKEY"
    assert submit(solver, method="userrecaptcha", googlekey="k")["request"] == "ERROR_PAGEURL"
    assert submit(solver, method="turnstile", sitekey="k")["request"] == "ERROR_PAGEURL"
    assert submit(solver, method="nosuch")["request"] == "ERROR_BAD_PARAMETERS"
    assert submit(solver, method="cloudflare_challenge", pageurl="https://x")["request"] == "ERROR_BAD_PARAMETERS"
    hc = {"method": "hcaptcha", "sitekey": "10000000-ffff", "pageurl": "https://x"}
    assert submit(solver, **hc) == {"status": 0, "request": "ERROR_SERVER_ERROR"}  # CaptchaAI: unsupported
    put_config(solver, hcaptcha="solve")                                             # 2captcha: solved
    assert wait_solved(solver, submit(solver, **hc)["request"])["request"].startswith("P1_")
    ent = submit(solver, verb="POST", enterprise=1, **RECAPTCHA)["request"]
    body = wait_solved(solver, ent)
    assert body["status"] == 1 and body["result"].startswith("03") and "request" not in body
    assert body["user_agent"].startswith("Mozilla/")
    assert res(solver, json=False, action="get", id=ent) == "OK|" + body["result"]
    v3 = submit(solver, version="v3", action="login", min_score="0.3", **RECAPTCHA)["request"]
    assert wait_solved(solver, v3)["status"] == 1
    gt = submit(solver, method="geetest", gt="g" * 32, challenge="c" * 32, pageurl="https://x")["request"]
    assert set(__import__("json").loads(wait_solved(solver, gt)["request"])) == {"challenge", "validate", "seccode"}


def test_images_base64_and_multipart(solver):
    body = base64.b64encode(png()).decode()
    tid = submit(solver, verb="POST", method="base64", body=body)["request"]
    answer = wait_solved(solver, tid)["request"]
    assert answer.isalnum() and len(answer) >= 6
    sub = [e for e in events(solver, "request") if e.action == "in.php"][-1]
    assert sub["params"]["body"] == {"chars": len(body)}  # the image is summarised in the journal
    assert submit(solver, verb="POST", method="base64", body=base64.b64encode(b"GIF89a").decode())["request"] \
        == "ERROR_ZERO_CAPTCHA_FILESIZE"
    assert submit(solver, verb="POST", method="base64", body=base64.b64encode(b"x" * 500).decode())["request"] \
        == "ERROR_IMAGE_TYPE_NOT_SUPPORTED"
    put_config(solver, max_image_bytes=1000)
    assert submit(solver, verb="POST", method="base64", body=base64.b64encode(png(5000)).decode())["request"] \
        == "ERROR_TOO_BIG_CAPTCHA_FILESIZE"
    put_config(solver, max_image_bytes=1024 * 1024)
    image = png(2000)
    r = requests.post(url(solver, "/in.php"), data={"key": KEY, "method": "post"},
                      files={"file": ("captcha.png", image, "image/png")}, timeout=5)
    assert r.text.startswith("OK|")
    req = [e for e in events(solver, "request") if e.action == "in.php"][-1]
    assert req["params"]["file"] == {"filename": "captcha.png", "size": len(image)}  # size, not bytes
    r = requests.post(url(solver, "/in.php"), data={"key": KEY, "method": "post", "json": 1},
                      files={"file": ("captcha.exe", image)}, timeout=5)
    assert r.json()["request"] == "ERROR_WRONG_FILE_EXTENSION"
    r = requests.post(url(solver, "/in.php"), data={"key": KEY, "method": "post", "json": 1}, timeout=5)
    assert r.json()["request"] == "ERROR_ZERO_CAPTCHA_FILESIZE"


def test_reports_balance_and_pingback_registration(solver):
    tid = submit(solver)["request"]
    assert res(solver, json=False, action="reportgood", id=tid) == "ERROR_REPORT_NOT_RECORDED"  # not done yet
    wait_solved(solver, tid)
    assert res(solver, json=False, action="reportbad", id=tid) == "OK_REPORT_RECORDED"
    assert res(solver, action="reportgood", id="99")["request"] == "ERROR_WRONG_CAPTCHA_ID"
    assert res(solver, action="add_pingback", addr="http://127.0.0.1:9/cb") == {"status": 1, "request": "OK_PINGBACK"}
    assert res(solver, action="add_pingback")["request"] == "ERROR_BAD_PARAMETERS"
    assert res(solver, action="get_pingback") == {"status": 1, "request": ["http://127.0.0.1:9/cb"]}
    assert res(solver, key=SECOND_KEY, action="get_pingback")["request"] == []
    put_config(solver, pingback_registration="reject")
    assert submit(solver, pingback="http://elsewhere.test/cb")["request"] == "ERROR_BAD_PARAMETERS"
    assert submit(solver, pingback="http://127.0.0.1:9/cb?x=1")["status"] == 1
    assert res(solver, json=False, action="del_pingback", addr="all") == "OK_PINGBACK"
    assert res(solver, json=False, action="get_pingback") == ""
    assert res(solver, action="nonsense")["request"] == "ERROR_BAD_PARAMETERS"
    tasks = requests.get(control(solver, "/solver/tasks"), timeout=5).json()
    assert any("reportbad" in t["reports"] for t in tasks["tasks"])


def test_malformed_input_never_500(solver):
    u = url(solver, "/in.php")
    bad = [
        requests.post(u, data=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=zz"}, timeout=5),
        requests.post(u, data=b"\xff\xfe\x00key=%%%", headers={"Content-Type": "application/x-www-form-urlencoded"},
                      timeout=5),
        requests.post(u + "?json=1", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=5),
        requests.post(u, data=b"x" * (5 * 1024 * 1024), headers={"Content-Type": "application/octet-stream"},
                      timeout=10),
        requests.get(url(solver, "/res.php"), params={"key": KEY, "action": "get", "ids": ",,,"}, timeout=5),
        requests.request("PATCH", url(solver, "/res.php"), timeout=5),
        requests.get(url(solver, "/etc/passwd"), timeout=5),
        requests.get(url(solver, "/site/submit"), timeout=5),
        requests.post(url(solver, "/site/submit"), data=b"{", headers={"Content-Type": "application/json"}, timeout=5),
    ]
    assert all(r.status_code < 500 for r in bad), [(r.status_code, r.text[:80]) for r in bad]
    with socket.create_connection(("127.0.0.1", int(url(solver).rsplit(":", 1)[1])), timeout=5) as s:
        s.sendall(b"GET /in.php?key=%zz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert int(s.recv(100).split(b" ")[1]) < 500


def test_site_submit_accepts_each_token_once(solver):
    put_config(solver, solve_distribution="fixed", solve_min_s=0.01, solve_max_s=0.01)
    tid = submit(solver)["request"]
    token = wait_solved(solver, tid)["request"]
    site = url(solver, "/site/submit")
    r = requests.post(site, data={"token": token, "task": tid}, timeout=5)
    assert (r.status_code, r.json()) == (200, {"ok": True, "task": tid})
    r = requests.post(site, json={"token": token}, timeout=5)
    assert (r.status_code, r.json()) == (403, {"ok": False, "error": "token already used"})
    r = requests.post(site, json={"token": "03forged"}, timeout=5)
    assert (r.status_code, r.json()["error"]) == (403, "unknown token")
    assert requests.post(site, json={}, timeout=5).status_code == 400
    other = wait_solved(solver, submit(solver)["request"])["request"]
    assert requests.post(site, data={"token": other, "task": "1"}, timeout=5).json()["error"] == "task mismatch"
    put_config(solver, site_token_ttl_s=0.05)
    late = wait_solved(solver, submit(solver)["request"])["request"]
    time.sleep(0.1)
    assert requests.post(site, data={"token": late}, timeout=5).json()["error"] == "token expired"
    uses = [e for e in events(solver, "request") if e.action == "site.submit"]
    assert [u["params"].get("token") for u in uses[:2]] == [token, token]
    marks = [e for e in events(solver, "solution_use") if e["token"] == token]
    assert [(m["ok"], m["use"]) for m in marks] == [(True, 1), (False, 2)]


def test_control_routes_reset_and_openapi(solver):
    tid = submit(solver)["request"]
    wait_solved(solver, tid)
    one = requests.get(control(solver, f"/solver/tasks/{tid}"), timeout=5).json()
    assert one["state"] == "solved" and one["key"] == KEY
    assert requests.get(control(solver, "/solver/tasks/1"), timeout=5).status_code == 404
    assert requests.get(control(solver, "/solver/tasks?state=bogus"), timeout=5).status_code == 400
    keys = requests.get(control(solver, "/solver/keys"), timeout=5).json()
    assert keys[SECOND_KEY]["threads"] == 1 and keys[KEY]["working"] == 0
    cfg = requests.get(control(solver, "/solver/config"), timeout=5).json()
    assert KEY in cfg["keys"] and all(len(k) == 32 for k in cfg["keys"])
    paths = requests.get(control(solver, "/openapi.json"), timeout=5).json()["paths"]
    assert {"/solver/tasks", "/solver/tasks/{id}", "/solver/keys", "/solver/config"} <= set(paths)
    assert requests.post(control(solver, "/reset"), timeout=5).status_code == 200
    assert res(solver, action="get", id=tid)["request"] == "ERROR_WRONG_CAPTCHA_ID"
    assert submit(solver)["request"] != tid  # ids are not reused after a reset


def test_fuzzed_fields_never_500_and_keep_the_protocol_shape(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    names = ["key", "method", "action", "id", "ids", "json", "body", "googlekey", "sitekey", "pageurl",
             "pingback", "proxy", "proxytype", "addr", "enterprise", "grid_size", "token", "task"]
    values = st.one_of(st.text(max_size=40), st.sampled_from(
        [KEY, "userrecaptcha", "base64", "post", "get", "ids", "1", "0", "-1", "1,2,,x", "http://[::1", "%00"]))

    with HostThread(services={"solver": dict(FAST)}, run_dir=str(tmp_path), seed=9) as ht:
        @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.dictionaries(st.sampled_from(names), values, max_size=8),
               st.sampled_from(["/in.php", "/res.php", "/site/submit"]), st.booleans())
        def check(fields, path, post):
            u = url(ht, path)
            r = (requests.post(u, data=fields, timeout=5) if post or path == "/site/submit"
                 else requests.get(u, params=fields, timeout=5))
            assert r.status_code < 500, (path, fields, r.status_code, r.text[:200])
            if path == "/site/submit":
                assert isinstance(r.json()["ok"], bool)
            elif r.headers["Content-Type"].startswith("application/json"):
                assert r.json()["status"] in (0, 1)
            else:
                assert r.text.startswith(("OK|", "ERROR_", "CAPCHA_NOT_READY", "IP_BANNED")) or \
                    fields.get("action") in ("getbalance", "get", "reportgood", "reportbad", "get_pingback",
                                             "add_pingback", "del_pingback"), (fields, r.text[:200])
        check()
