"""The App Store's JWS: a genuine one is read, and any text at all (or a genuine one with any
segment replaced) is Unverified, never another error."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from lwork.payments.apple_jws import Unverified, load_roots, verified_payload

from fakes.appstore import Chain

CHAIN = Chain.new()
ROOTS = load_roots([CHAIN.root_pem()])
NOW = dt.datetime.now(dt.UTC)
GENUINE = CHAIN.sign({"productId": "coins_300", "n": 1})
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def unverified(token: str) -> bool:
    try:
        verified_payload(token, ROOTS, NOW)
    except Unverified:
        return True
    return False


def test_a_genuine_token_is_read_and_only_at_a_valid_time() -> None:
    assert verified_payload(GENUINE, ROOTS, NOW) == {"productId": "coins_300", "n": 1}
    assert unverified_at(NOW + dt.timedelta(days=400)) and unverified_at(NOW - dt.timedelta(days=2))


def unverified_at(when: dt.datetime) -> bool:
    try:
        verified_payload(GENUINE, ROOTS, when)
    except Unverified:
        return True
    return False


@given(st.text(max_size=400))
def test_any_text_is_unverified(text: str) -> None:
    assert unverified(text)


@given(st.integers(0, 2), st.text(alphabet=BASE64URL, max_size=200))
def test_a_genuine_token_with_a_segment_replaced_is_unverified(index: int, segment: str) -> None:
    parts = GENUINE.split(".")
    if parts[index] == segment:
        return
    parts[index] = segment
    assert unverified(".".join(parts))
