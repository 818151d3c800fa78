"""An App Store order's payid and the appAccountToken the app buys with give each other, no
other text reads as a token, and a transaction's token is a UUID or the transaction is
refused."""

from __future__ import annotations

import time
import uuid

from hypothesis import given
from hypothesis import strategies as st

from lwork.payments.apple import AppleProvider
from lwork.payments.apple_jws import Unverified
from lwork.payments.orders import PAYID_LENGTH, new_payid, payid_of_token, token_of_payid
from lwork.payments.products import Catalogue
from lwork.settings.payments import AppleSettings, default_products

from fakes.appstore import BUNDLE_ID, FakeAppStore


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


STORE = FakeAppStore()
PROVIDER = AppleProvider(
    AppleSettings(enabled=True, bundle_id=BUNDLE_ID, environment="Sandbox",
                  root_certificates=[STORE.chain.root_pem()]),
    Catalogue(default_products()), time.time,
)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40) | st.uuids().map(str),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=5,
)  # fmt: skip


@given(JSON)
def test_a_transactions_app_account_token_is_a_uuid_or_it_is_refused(value: object) -> None:
    signed = STORE.chain.sign(STORE.transaction("coins_300", appAccountToken=value))
    try:
        transaction = PROVIDER.transaction(signed)
    except Unverified:
        assert value is not None
        return
    assert transaction.account_token == (None if value is None else uuid.UUID(str(value)))
