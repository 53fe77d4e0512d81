"""The official clients, unmodified, against the solver mock: ``captchaai`` 1.0.1 over HTTP (and
HTTPS) and ``2captcha-python`` over HTTPS with the mock's local CA (``REQUESTS_CA_BUNDLE``).

Only timing knobs are turned down so the tests are fast: the captchaai registry's initial wait and
poll interval, its jitter, and its thread-busy back-off; 2captcha's ``pollingInterval`` (which it
truncates to whole seconds).
"""

import dataclasses
import threading
import time

import pytest
import requests

from harness.host import HostThread
from harness.journal import read_events
from mocks.solver import DEFAULT_KEY as KEY
from mocks.solver import SECOND_KEY
from mocks.solver.receiver import ReceiverThread
from tests.test_solver_api import png

captchaai = pytest.importorskip("captchaai")
twocaptcha = pytest.importorskip("twocaptcha")
from captchaai.core import registry as ca_registry  # noqa: E402
from captchaai.helpers import retry as ca_retry  # noqa: E402
# 2captcha-python quirk: its HTTP layer raises twocaptcha.exceptions.api.* — NOT the
# twocaptcha.ApiException / NetworkException it exports (those are other classes).
from twocaptcha.exceptions.api import ApiException as TwoApiError  # noqa: E402
from twocaptcha.exceptions.api import NetworkException as TwoNetworkError  # noqa: E402

SITEKEY, PAGE = "6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI", "https://example.test/login"


def fixed(seconds):
    return {"solve_distribution": "fixed", "solve_min_s": seconds, "solve_max_s": seconds}


def events(ht, kind):
    return [e for e in read_events(ht.host.journal.read_since(0)) if e.kind == kind]


def tokens(ht):
    return {str(e["task"]): e["token"] for e in events(ht, "solution")}


def add_rules(ht, *rules):
    r = requests.post(ht.host.urls["control"] + "/rules", json=list(rules), timeout=5)
    assert r.status_code == 201, r.text


def put_config(ht, **patch):
    assert requests.put(ht.host.urls["control"] + "/solver/config", json=patch, timeout=5).status_code == 200


# --- captchaai -----------------------------------------------------------------------------------
@pytest.fixture()
def fast_captchaai(monkeypatch):
    """Shrink the SDK's waits (15 s initial wait, 5 s polls, ~8 s busy back-off) to milliseconds."""
    for name, entry in list(ca_registry.REGISTRY.items()):
        monkeypatch.setitem(ca_registry.REGISTRY, name, dataclasses.replace(entry, initial_wait=0.02,
                                                                           poll_interval=0.05))
    monkeypatch.setattr(ca_retry, "thread_busy_backoff", lambda interval=8.0, jitter_max=3.0: ca_retry.linear(0.1, 0))

    def make(base_url, key=KEY, **kw):
        client = captchaai.CaptchaAI(key, base_url=base_url, **kw)
        client._config = dataclasses.replace(client._config, jitter_max=0.0, submit_backoff_base=0.05)
        return client
    return make


@pytest.fixture()
def http_solver(tmp_path):
    with HostThread(services={"solver": fixed(0.1)}, run_dir=str(tmp_path), seed=21) as ht:
        yield ht


def test_captchaai_submit_poll_solution(http_solver, fast_captchaai):
    client = fast_captchaai(http_solver.host.urls["solver"])
    try:
        assert client.threads_info() == {"threads": 5, "working_threads": 0}
        result = client.recaptcha_v2(SITEKEY, PAGE)
        assert result.solution == tokens(http_solver)[result.task_id]
        ts = client.turnstile("0x4AAAAAAA", PAGE)
        assert ts.solution.startswith("0.") and ts.solution == tokens(http_solver)[ts.task_id]
        ent = client.recaptcha_v2(SITEKEY, PAGE, enterprise=True)        # answer in `result` + user_agent
        assert ent.solution == tokens(http_solver)[ent.task_id] and ent.user_agent.startswith("Mozilla/")
        img = client.normal(png(600))
        assert img.solution == tokens(http_solver)[img.task_id]
        polls = [e for e in events(http_solver, "request") if e.action == "res.php"
                 and e["params"].get("id") == result.task_id]
        assert polls and all(p["params"]["json"] == "1" for p in polls)
        submits = [e for e in events(http_solver, "request") if e.action == "in.php"]
        assert [s["method"] for s in submits] == ["GET", "GET", "POST", "POST"]  # as the SDK's registry says
    finally:
        client.close()


def test_captchaai_bad_keys_fail_at_construction(http_solver):
    with pytest.raises(captchaai.InvalidKeyError):
        captchaai.CaptchaAI("f" * 32, base_url=http_solver.host.urls["solver"])
    with pytest.raises(captchaai.InvalidKeyError):
        captchaai.CaptchaAI("short", base_url=http_solver.host.urls["solver"])  # checked locally


def test_captchaai_unsolvable(http_solver, fast_captchaai):
    put_config(http_solver, unsolvable_sitekeys=["never"])
    client = fast_captchaai(http_solver.host.urls["solver"])
    with pytest.raises(captchaai.UnsolvableError):
        client.recaptcha_v2("never", PAGE)
    add_rules(http_solver, {"match": {"service": "solver", "action": "res.php", "params": {"action": "get"}},
                            "effect": {"error": "ERROR_CAPTCHA_UNSOLVABLE"}, "schedule": {"times": 1}})
    with pytest.raises(captchaai.UnsolvableError):
        client.turnstile("0x4AAAAAAA", PAGE)
    client.close()


def test_captchaai_no_slot_rule_needs_a_caller_backoff(http_solver, fast_captchaai):
    """The SDK backs off only on ERROR_ZERO_BALANCE; ERROR_NO_SLOT_AVAILABLE surfaces as APIError."""
    add_rules(http_solver, {"match": {"service": "solver", "action": "in.php", "params": {"method": "userrecaptcha"}},
                            "effect": {"error": "ERROR_NO_SLOT_AVAILABLE"}, "schedule": {"times": 2}})
    client = fast_captchaai(http_solver.host.urls["solver"])
    errors, result = [], None
    for _ in range(5):
        try:
            result = client.recaptcha_v2(SITEKEY, PAGE)
            break
        except captchaai.APIError as e:
            errors.append(str(e))
            time.sleep(0.05)
    client.close()
    assert errors == ["Unexpected submit error: ERROR_NO_SLOT_AVAILABLE"] * 2
    assert result is not None and result.solution == tokens(http_solver)[result.task_id]


def raw_submit(ht, key):
    r = requests.get(ht.host.urls["solver"] + "/in.php", timeout=5, params={
        "key": key, "method": "userrecaptcha", "googlekey": SITEKEY, "pageurl": PAGE, "json": 1}).json()
    assert r["status"] == 1, r
    return str(r["request"])


def test_captchaai_backs_off_on_a_real_thread_cap(http_solver, fast_captchaai, monkeypatch):
    """SECOND_KEY has one thread, held by a long task: in.php says ERROR_ZERO_BALANCE (CaptchaAI
    docs), the SDK checks threadsinfo (1/1 busy) and waits; while it waits a slot frees (the cap is
    raised), and its retry gets the task in."""
    put_config(http_solver, **fixed(5.0))
    raw_submit(http_solver, SECOND_KEY)

    def backoff(interval=8.0, jitter_max=3.0):
        # runs when the SDK first decides to wait for a slot: free one, then short sleeps
        put_config(http_solver, keys={SECOND_KEY: {"threads": 2, "balance": 1.0}}, **fixed(0.05))
        yield from ca_retry.linear(0.05, 0)
    monkeypatch.setattr(ca_retry, "thread_busy_backoff", backoff)
    client = fast_captchaai(http_solver.host.urls["solver"], key=SECOND_KEY)
    result = client.recaptcha_v2(SITEKEY, PAGE)
    client.close()
    assert result.solution == tokens(http_solver)[result.task_id]
    replies = [e["body"] for e in events(http_solver, "response") if e.action == "in.php"]
    assert [r["request"] if r["status"] == 0 else "OK" for r in replies] == ["OK", "ERROR_ZERO_BALANCE", "OK"]
    infos = [e["body"] for e in events(http_solver, "response") if isinstance(e["body"], dict)
             and "working_threads" in e["body"]]
    assert infos == [{"status": 1, "threads": 1, "working_threads": 1}] * 2  # startup + the SDK's diagnosis


def test_captchaai_misreads_a_slot_freed_between_reject_and_diagnosis(http_solver, fast_captchaai):
    """A race in the SDK: if a thread frees after in.php said ERROR_ZERO_BALANCE but before the
    SDK's threadsinfo check, it raises NoThreadsError ("Account expired or has no active plan") —
    a fatal error for a transient state. Reproduced deterministically with one injected reply."""
    add_rules(http_solver, {"match": {"service": "solver", "action": "in.php"},
                            "effect": {"error": "ERROR_ZERO_BALANCE"}, "schedule": {"times": 1}})
    client = fast_captchaai(http_solver.host.urls["solver"])
    with pytest.raises(captchaai.NoThreadsError, match="no active plan"):
        client.recaptcha_v2(SITEKEY, PAGE)
    assert client.recaptcha_v2(SITEKEY, PAGE).solution  # the account was fine all along
    client.close()


def test_captchaai_with_silent_queueing(http_solver, fast_captchaai):
    """thread_cap_reply: queue (what the SDK's comments claim production does): no error at all,
    the task just starts when the key's only thread frees."""
    put_config(http_solver, thread_cap_reply="queue", **fixed(0.4))
    first = raw_submit(http_solver, SECOND_KEY)
    client = fast_captchaai(http_solver.host.urls["solver"], key=SECOND_KEY)
    queued = client.recaptcha_v2(SITEKEY, PAGE)
    client.close()
    sols = {str(e["task"]): e for e in events(http_solver, "solution")}
    assert queued.solution == sols[queued.task_id]["token"]
    assert sols[queued.task_id].t - sols[first].t >= 0.35  # solved only after the first freed the thread


def test_captchaai_over_https_with_ssl_cert_file(tmp_path, fast_captchaai, monkeypatch):
    with HostThread(services={"solver": fixed(0.05)}, run_dir=str(tmp_path), seed=2, tls=True) as ht:
        assert ht.host.urls["solver"].startswith("https://127.0.0.1:")
        monkeypatch.setenv("SSL_CERT_FILE", ht.host.ctx.tls_ca)  # httpx trusts it
        client = fast_captchaai(ht.host.urls["solver"])
        result = client.recaptcha_v2(SITEKEY, PAGE)
        client.close()
        assert result.solution == tokens(ht)[result.task_id]


# --- 2captcha-python -----------------------------------------------------------------------------
@pytest.fixture()
def tls_solver(tmp_path, monkeypatch):
    with HostThread(services={"solver": fixed(0.0)}, run_dir=str(tmp_path), seed=22, tls=True) as ht:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ht.host.ctx.tls_ca)
        yield ht


def two(ht, **kw):
    server = ht.host.urls["solver"].removeprefix("https://")  # host:port; the SDK prepends https://
    return twocaptcha.TwoCaptcha(KEY, server=server, pollingInterval=1, defaultTimeout=15, recaptchaTimeout=15, **kw)


def test_2captcha_needs_the_ca_and_then_solves(tls_solver, monkeypatch):
    url = tls_solver.host.urls["solver"]
    assert url.startswith("https://") and requests.get(url + "/res.php", timeout=5).status_code == 200
    put_config(tls_solver, **fixed(0.8))  # first poll comes back CAPCHA_NOT_READY
    result = two(tls_solver).recaptcha(sitekey=SITEKEY, url=PAGE)
    assert result["code"] == tokens(tls_solver)[result["captchaId"]]
    polls = [e["body"] for e in events(tls_solver, "response") if e.action == "res.php"]
    assert polls[-2:] == ["CAPCHA_NOT_READY", "OK|" + result["code"]]
    sub = [e for e in events(tls_solver, "request") if e.action == "in.php"][-1]
    assert sub["method"] == "POST" and sub["params"]["soft_id"] == "4580" and sub["params"]["pageurl"] == PAGE

    monkeypatch.delenv("REQUESTS_CA_BUNDLE")  # without the local CA the TLS handshake fails
    with pytest.raises(TwoNetworkError, match="CERTIFICATE_VERIFY_FAILED"):
        two(tls_solver).recaptcha(sitekey=SITEKEY, url=PAGE)


def test_2captcha_no_slot_backoff(tls_solver):
    add_rules(tls_solver, {"match": {"service": "solver", "action": "in.php"},
                           "effect": {"error": "ERROR_NO_SLOT_AVAILABLE"}, "schedule": {"times": 2}})
    solver, seen, result = two(tls_solver), [], None
    for _ in range(5):
        try:
            result = solver.recaptcha(sitekey=SITEKEY, url=PAGE)
            break
        except TwoApiError as e:
            seen.append(str(e))
            time.sleep(0.05)
    assert seen == ["ERROR_NO_SLOT_AVAILABLE"] * 2
    assert result["code"] == tokens(tls_solver)[result["captchaId"]]


def test_2captcha_unsolvable_balance_report_image(tls_solver, tmp_path):
    put_config(tls_solver, unsolvable_sitekeys=["never"], hcaptcha="solve")
    solver = two(tls_solver)
    with pytest.raises(TwoApiError, match="ERROR_CAPTCHA_UNSOLVABLE"):
        solver.recaptcha(sitekey="never", url=PAGE)
    assert solver.balance() == 10.0
    image = tmp_path / "captcha.png"
    image.write_bytes(png(800))
    answer = solver.normal(str(image))                      # multipart method=post
    assert answer["code"] == tokens(tls_solver)[answer["captchaId"]]
    assert solver.report(answer["captchaId"], False) == "OK_REPORT_RECORDED"
    hc = solver.hcaptcha(sitekey="10000000-ffff-ffff-ffff-000000000001", url=PAGE)  # 2captcha mode
    assert hc["code"].startswith("P1_")
    put_config(tls_solver, hcaptcha="error")                 # CaptchaAI: not supported
    with pytest.raises(TwoApiError, match="ERROR_SERVER_ERROR"):
        solver.hcaptcha(sitekey="10000000-ffff-ffff-ffff-000000000001", url=PAGE)


def test_2captcha_poll_5xx_escapes_its_retry_loop(tls_solver):
    """protocols.md says res.php non-200 keeps it polling; 2.1.2 catches the wrong NetworkException
    class in wait_result, so one 503 on res.php ends solve() with an exception."""
    put_config(tls_solver, **fixed(0.2))
    add_rules(tls_solver, {"match": {"service": "solver", "action": "res.php"},
                           "effect": {"status": 503, "body": "<html>busy</html>"}, "schedule": {"times": 1}})
    with pytest.raises(TwoNetworkError, match="bad response: 503"):
        two(tls_solver).recaptcha(sitekey=SITEKEY, url=PAGE)


def test_2captcha_callback_gets_the_pingback(tls_solver):
    with ReceiverThread() as receiver:
        solver = two(tls_solver, callback=receiver.url)
        assert solver.recaptcha(sitekey=SITEKEY, url=PAGE) is None  # SDK quirk: solve() returns None with a callback
        tid = solver.send(method="userrecaptcha", googlekey=SITEKEY, pageurl=PAGE)
        got = receiver.wait_for(2)
        assert {r.query["id"] for r in got} >= {tid}
        assert all(r.query["code"] == tokens(tls_solver)[r.query["id"]] for r in got)


def test_clients_in_parallel_threads(http_solver, fast_captchaai):
    """Several clients at once: every task gets its own token; no thread sees another's."""
    put_config(http_solver, keys={KEY: {"threads": 20}})
    client = fast_captchaai(http_solver.host.urls["solver"])
    results, errors = [], []

    def work():
        try:
            results.append(client.recaptcha_v2(SITEKEY, PAGE))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    client.close()
    assert not errors and len(results) == 8
    assert len({r.solution for r in results}) == 8
    assert all(r.solution == tokens(http_solver)[r.task_id] for r in results)
