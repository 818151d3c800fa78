"""The pure halves of the vendor SMS providers: phone numbers and reading the vendors' answers,
with property tests that no input makes them fail other than with SmsError / ValueError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.accounts import sms_aliyun, sms_tencent
from lwork.accounts.sms import SmsError
from lwork.accounts.sms_numbers import aliyun_number, e164


@pytest.mark.parametrize(
    ("raw", "tencent", "aliyun"),
    [
        ("13800138000", "+8613800138000", "13800138000"),
        ("+8613800138000", "+8613800138000", "13800138000"),
        ("008613800138000", "+8613800138000", "13800138000"),
        ("0085291234567", "+85291234567", "85291234567"),
        ("+447700900123", "+447700900123", "447700900123"),
    ],
)
def test_numbers_take_each_vendors_form(raw: str, tencent: str, aliyun: str) -> None:
    assert e164(raw) == tencent
    assert aliyun_number(raw) == aliyun


@pytest.mark.parametrize(
    "raw", ["", "12345", "13800138000,13900139000", "+0123456789", "1380013800", "+86 138", "x"]
)
def test_other_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        e164(raw)


@given(st.text(max_size=40))
def test_a_number_is_refused_or_digits_only(raw: str) -> None:
    try:
        number = e164(raw)
    except ValueError:
        return
    assert number[0] == "+" and number[1:].isascii() and number[1:].isdigit()
    assert 8 <= len(number) <= 16
    assert aliyun_number(raw).isdigit()


def aliyun(answer: object, status: int = 200) -> SmsError | None:
    try:
        sms_aliyun.read_answer(status, json.dumps(answer).encode())
    except SmsError as exc:
        return exc
    return None


def tencent(answer: object, status: int = 200) -> SmsError | None:
    try:
        sms_tencent.read_answer(status, json.dumps(answer).encode())
    except SmsError as exc:
        return exc
    return None


def test_aliyun_answers() -> None:
    assert aliyun({"Code": "OK", "Message": "OK", "BizId": "1"}) is None
    throttled = aliyun({"Code": "isv.BUSINESS_LIMIT_CONTROL"})
    assert throttled is not None and throttled.temporary
    bad_number = aliyun({"Code": "isv.MOBILE_NUMBER_ILLEGAL"})
    assert bad_number is not None and not bad_number.temporary
    busy = aliyun({"Code": "OK"}, status=503)  # an OK code with a failed status is no success
    assert busy is not None and busy.temporary
    forged = aliyun({"Code": "x\nlwork: code 123456 accepted"})
    assert forged is not None and "123456" not in str(forged)


def test_tencent_answers() -> None:
    ok = {"Response": {"SendStatusSet": [{"Code": "Ok", "PhoneNumber": "+8613800138000"}]}}
    assert tencent(ok) is None
    limited = tencent({"Response": {"Error": {"Code": "LimitExceeded.AppDailyLimit"}}})
    assert limited is not None and limited.temporary
    wrong = {
        "Response": {"SendStatusSet": [{"Code": "InvalidParameterValue.IncorrectPhoneNumber"}]}
    }
    refused = tencent(wrong)
    assert refused is not None and not refused.temporary
    empty = tencent({"Response": {"SendStatusSet": []}})
    assert empty is not None and empty.temporary


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    st.integers(100, 599),
    st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())),
)
def test_no_answer_breaks_the_readers(status: int, body: bytes) -> None:
    for read in (sms_aliyun.read_answer, sms_tencent.read_answer):
        try:
            read(status, body)
        except SmsError:
            pass
