"""The Chinese push vendors' answer readers: documented answers map to the right outcome, and
no answer whatsoever makes them raise (they run on whatever the network hands back)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from lwork.push.providers.base import Delivered, RetryLater, TokenRejected, Undeliverable
from lwork.push.providers.honor import classify_honor_response
from lwork.push.providers.huawei import classify_huawei_response
from lwork.push.providers.jpush import classify_jpush_response
from lwork.push.providers.oppo import classify_oppo_response, oppo_sign
from lwork.push.providers.vivo import classify_vivo_response, vivo_sign
from lwork.push.providers.xiaomi import classify_xiaomi_response

TOKEN = "tok"


def j(value: object) -> bytes:
    return json.dumps(value).encode()


def test_documented_answers() -> None:
    assert classify_huawei_response(200, j({"code": "80000000"}), None) == Delivered()
    assert isinstance(classify_huawei_response(200, j({"code": "80300007"}), None), TokenRejected)
    assert classify_huawei_response(401, j({"code": "80200003"}), None).retry_after == 0.0  # type: ignore[union-attr]
    assert isinstance(classify_huawei_response(400, j({"code": "80100003"}), None), Undeliverable)
    ok = {"result": "ok", "code": 0, "data": {"id": "x"}}
    assert classify_xiaomi_response(200, j(ok), TOKEN, None) == Delivered()
    bad = {**ok, "data": {"id": "x", "bad_regids": "a,tok"}}
    assert isinstance(classify_xiaomi_response(200, j(bad), TOKEN, None), TokenRejected)
    assert isinstance(classify_xiaomi_response(200, j({"code": 21301}), TOKEN, None), Undeliverable)
    assert isinstance(classify_xiaomi_response(200, j({"code": 10034}), TOKEN, None), RetryLater)
    assert classify_oppo_response(200, j({"code": 0}), None) == Delivered()
    assert isinstance(classify_oppo_response(200, j({"code": 10000}), None), TokenRejected)
    assert isinstance(classify_oppo_response(200, j({"code": 33}), None), RetryLater)
    assert classify_vivo_response(200, j({"result": 0}), None) == Delivered()
    assert isinstance(classify_vivo_response(200, j({"result": 10302}), None), TokenRejected)
    honor_ok = {"code": 200, "data": {"sendResult": True}}
    assert classify_honor_response(200, j(honor_ok), TOKEN, None) == Delivered()
    expired = {"code": 200, "data": {"expireTokens": [TOKEN]}}
    assert isinstance(classify_honor_response(200, j(expired), TOKEN, None), TokenRejected)
    assert classify_jpush_response(200, j({"sendno": "0", "msg_id": "1"}), None) == Delivered()
    gone = {"error": {"code": 1011, "message": "cannot find user by this audience"}}
    assert isinstance(classify_jpush_response(400, j(gone), None), TokenRejected)
    authen = {"error": {"code": 1004, "message": "Authen failed"}}
    assert isinstance(classify_jpush_response(401, j(authen), None), Undeliverable)


def test_a_success_code_with_a_failed_status_is_no_success() -> None:
    assert isinstance(classify_huawei_response(503, j({"code": "80000000"}), None), RetryLater)
    assert isinstance(classify_oppo_response(502, j({"code": 0}), None), RetryLater)
    assert isinstance(classify_vivo_response(500, j({"result": 0}), None), RetryLater)


def test_auth_signatures_follow_the_documented_formulas() -> None:
    # OPPO: sha256 hex of app_key + timestamp + master_secret; vivo: md5 hex of
    # appId + appKey + timestamp + appSecret (values computed with coreutils' sha256sum/md5sum).
    assert oppo_sign("k", "1", "s") == (
        "caf7ee8e690491a9d1e313429bc1a1d56683eb78a2224753521b47cf717fcc80"
    )
    assert vivo_sign("1", "k", "2", "s") == "d5fbc1b551d03bdd9eb33777953b51c1"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "code",
                    "result",
                    "data",
                    "error",
                    "msg_id",
                    "bad_regids",
                    "failTokens",
                    "expireTokens",
                ]
            ),
            inner,
            max_size=4,
        )
    ),  # fmt: skip
    max_leaves=12,
)
bodies = st.one_of(st.binary(max_size=120), json_values.map(lambda v: json.dumps(v).encode()))


@given(st.integers(100, 599), bodies, st.none() | st.floats(0, 100))
def test_no_answer_makes_a_reader_raise(status: int, body: bytes, retry: float | None) -> None:
    classify_huawei_response(status, body, retry)
    classify_xiaomi_response(status, body, TOKEN, retry)
    classify_oppo_response(status, body, retry)
    classify_vivo_response(status, body, retry)
    classify_honor_response(status, body, TOKEN, retry)
    classify_jpush_response(status, body, retry)
