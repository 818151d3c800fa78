"""Garbage from a push service never escapes as anything but a classified outcome or ValueError."""

from __future__ import annotations

import json
import math
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.push.providers import (
    AccessToken,
    ServiceAccount,
    baidu_sign,
    classify_apns_response,
    classify_baidu_response,
    classify_fcm_response,
)
from lwork.push.providers.apns import parse_apns_reason
from lwork.push.providers.baidu import BaiduResponse, php_urlencode
from lwork.push.providers.base import Delivered, RetryLater, TokenRejected, Undeliverable
from lwork.push.providers.fcm import FcmErrorResponse
from lwork.push.providers.httputil import parse_retry_after

OUTCOMES = (Delivered, TokenRejected, RetryLater, Undeliverable)
FUZZ = settings(max_examples=200, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
# Bodies shaped like the real answers, with random contents in the fields we read.
shaped = st.one_of(
    st.fixed_dictionaries({"error": json_values}),
    st.fixed_dictionaries(
        {"error": st.fixed_dictionaries({"status": json_values, "message": json_values,
                                         "details": st.lists(json_values, max_size=3)})}
    ),
    st.fixed_dictionaries({"error_code": json_values, "error_msg": json_values}),
    st.fixed_dictionaries({"response_params": json_values, "request_id": json_values}),
    st.fixed_dictionaries({"reason": json_values, "timestamp": json_values}),
    st.fixed_dictionaries({"access_token": json_values, "expires_in": json_values}),
)  # fmt: skip
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
    st.just(b"[" * 5000),
)
statuses = st.integers(min_value=100, max_value=599)
retry_after = st.none() | st.floats(min_value=0, max_value=1e6)


@FUZZ
@given(statuses, bodies, retry_after)
def test_classifiers_always_return_an_outcome(status: int, body: bytes, hint: float | None) -> None:
    for classify in (classify_baidu_response, classify_fcm_response, classify_apns_response):
        assert isinstance(classify(status, body, hint), OUTCOMES)


@FUZZ
@given(bodies)
def test_response_parsers_return_a_value_or_raise_value_error(body: bytes) -> None:
    for parse in (
        BaiduResponse.parse,
        FcmErrorResponse.parse,
        parse_apns_reason,
        ServiceAccount.parse,
    ):
        try:
            parse(body)
        except ValueError:
            pass
    try:
        token = AccessToken.parse(body, 1000.0)
    except ValueError:
        return
    assert token.value and token.expires_at > 1000.0


@FUZZ
@given(st.none() | st.text(max_size=40), st.floats(min_value=0, max_value=4e9))
def test_retry_after_is_none_or_a_finite_non_negative_delay(value: str | None, now: float) -> None:
    delay = parse_retry_after(value, now)
    assert delay is None or (math.isfinite(delay) and delay >= 0)


@FUZZ
@given(st.text(max_size=60))
def test_php_urlencode_output_is_plain_ascii(text: str) -> None:
    encoded = php_urlencode(text)
    assert set(encoded) <= set(string.ascii_letters + string.digits + "_.-+%")


@FUZZ
@given(
    st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=30), max_size=6),
    st.text(max_size=20),
)
def test_baidu_sign_is_32_hex_digits(params: dict[str, str], secret: str) -> None:
    sign = baidu_sign("POST", "http://h/rest/3.0/push/single_device", params, secret)
    assert len(sign) == 32 and set(sign) <= set("0123456789abcdef")
