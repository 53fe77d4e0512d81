"""UserSig verification against signatures made by the official tls-sig-api-v2 package."""

import base64
import json
import time
import zlib

import pytest
import TLSSigAPIv2
from hypothesis import given, settings
from hypothesis import strategies as st

from mocks.chat.usersig import decode_usersig, make_usersig, verify_usersig

APP, KEY = 1400000000, "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"


def real_sig(identifier="administrator", expire=180 * 86400, app=APP, key=KEY, userbuf=None):
    api = TLSSigAPIv2.TLSSigAPIv2(app, key)
    if userbuf is not None:
        return api.gen_sig_with_userbuf(identifier, expire, userbuf)
    return api.gen_sig(identifier, expire)


def check(sig, identifier="administrator", app=APP, key=KEY, now=None):
    return verify_usersig(sig, sdkappid=app, identifier=identifier, key=key, now=now)


def reencode(doc):
    raw = base64.b64encode(zlib.compress(json.dumps(doc).encode())).decode()
    return raw.replace("+", "*").replace("/", "-").replace("=", "_")


def test_official_signatures_verify():
    assert check(real_sig()) is None
    assert check(real_sig(userbuf=b"room-42"), now=time.time()) is None
    assert verify_usersig(real_sig(), sdkappid=str(APP), identifier="administrator", key=KEY) is None


def test_each_failure_has_its_own_reason():
    assert check(real_sig(expire=0)) == "sig_expired"
    assert check(real_sig(expire=100), now=time.time() + 101) == "sig_expired"
    assert check(real_sig(expire=100), now=time.time() + 50) is None
    assert check(real_sig(key="another-key")) == "sig_wrong_key"
    assert check(real_sig(identifier="alice")) == "sig_identifier_mismatch"
    assert check(real_sig(app=1400000001)) == "sig_sdkappid_mismatch"
    assert check("not-a-usersig") == "sig_invalid"
    assert check("") == "sig_invalid"


def test_tampered_document_fails_the_hmac():
    doc = decode_usersig(real_sig(expire=60))
    assert doc["TLS.ver"] == "2.0" and doc["TLS.expire"] == 60
    doc["TLS.expire"] = 10 * 365 * 86400  # extend the lifetime without re-signing
    assert check(reencode(doc)) == "sig_wrong_key"


def test_document_with_wrong_field_types_is_invalid():
    doc = decode_usersig(real_sig())
    for field, bad in [("TLS.time", "123"), ("TLS.expire", None), ("TLS.sdkappid", True), ("TLS.sig", 5)]:
        assert check(reencode({**doc, field: bad})) == "sig_invalid", field
    assert check(reencode({k: v for k, v in doc.items() if k != "TLS.sig"})) == "sig_invalid"
    assert check(reencode([doc])) == "sig_invalid"


def test_our_generator_matches_the_official_format():
    ours, theirs = decode_usersig(make_usersig(APP, KEY, "bob", 3600, now=1700000000)), decode_usersig(real_sig("bob"))
    assert set(ours) == set(theirs)
    assert check(make_usersig(APP, KEY, "bob"), identifier="bob") is None


def test_zip_bomb_is_refused():
    bomb = base64.b64encode(zlib.compress(b"{" + b" " * 200_000 + b"}")).decode()
    assert check(bomb.replace("+", "*").replace("/", "-").replace("=", "_")) == "sig_invalid"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text):
    assert check(text) in ("sig_invalid", "sig_sdkappid_mismatch", "sig_identifier_mismatch", "sig_wrong_key",
                           "sig_expired")


@pytest.mark.parametrize("cut", [1, 10, 40])
def test_truncated_signature_is_invalid(cut):
    assert check(real_sig()[:-cut]) == "sig_invalid"
