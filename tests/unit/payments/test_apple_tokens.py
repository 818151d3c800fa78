"""An App Store order's payid and the appAccountToken the app buys with give each other, and
no other text reads as a token."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from lwork.payments.orders import PAYID_LENGTH, new_payid, payid_of_token, token_of_payid


@given(st.uuids(version=4) | st.builds(uuid.UUID, int=st.integers(0, 2**128 - 1)))
def test_a_tokens_payid_gives_the_token_back(token: uuid.UUID) -> None:
    payid = payid_of_token(token)
    assert len(payid) == PAYID_LENGTH and payid.isalnum() and payid.isascii()
    assert token_of_payid(payid) == token


@given(st.text(max_size=40))
def test_any_text_is_no_token_or_the_payid_of_its_token(text: str) -> None:
    token = token_of_payid(text)
    assert token is None or payid_of_token(token) == text


def test_random_payids_beyond_128_bits_are_no_token() -> None:
    assert token_of_payid("z" * PAYID_LENGTH) is None
    assert token_of_payid(new_payid()[:-1]) is None
