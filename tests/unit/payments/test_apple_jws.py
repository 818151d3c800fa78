"""The App Store's JWS: a genuine one is read, and any text at all (or a genuine one with any
segment replaced) is Unverified, never another error."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from lwork.payments.apple_jws import Chains, Unverified, load_roots, verified_payload

from fakes.appstore import Chain

CHAIN = Chain.new()
ROOTS = Chains(load_roots([CHAIN.root_pem()]))
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


def signed_with_x5c(entries: list[bytes]) -> str:
    """GENUINE's payload signed by CHAIN's leaf key, its header's x5c holding ``entries``."""

    def b64url(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = {"alg": "ES256", "x5c": [base64.b64encode(entry).decode() for entry in entries]}
    signing_input = f"{b64url(json.dumps(header).encode())}.{GENUINE.split('.')[1]}"
    r, s = decode_dss_signature(CHAIN.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32) + s.to_bytes(32))}"


DERS = [c.public_bytes(serialization.Encoding.DER) for c in (CHAIN.leaf, CHAIN.intermediate,
                                                            CHAIN.root)]  # fmt: skip


@given(st.integers(0, 2), st.data())
def test_a_chain_with_a_certificate_damaged_is_unverified_never_an_error(
    index: int, data: st.DataObject
) -> None:
    der = bytearray(DERS[index])
    cut = data.draw(st.booleans())
    at = data.draw(st.integers(0, len(der) - 1))
    if cut:
        del der[at:]
    else:
        der[at] ^= data.draw(st.integers(1, 255))
    entries = list(DERS)
    entries[index] = bytes(der)
    try:
        payload = verified_payload(signed_with_x5c(entries), ROOTS, NOW)
    except Unverified:
        return
    # Only a byte outside what the issuer signed can change and still verify.
    assert payload == {"productId": "coins_300", "n": 1}


@pytest.mark.parametrize("index", [0, 1])
def test_a_certificate_with_a_negative_serial_number_is_unverified(index: int) -> None:
    # What a random damage once drew: cryptography reads such a certificate with a warning
    # only (RFC 5280 forbids it), which must not decide what the verification answers.
    cert = (CHAIN.leaf, CHAIN.intermediate)[index]
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")
    der = bytearray(DERS[index])
    at = bytes(der).index(b"\x02" + bytes([len(serial)]) + serial) + 2  # the INTEGER's content
    der[at] |= 0x80
    entries = list(DERS)
    entries[index] = bytes(der)
    with pytest.raises(Unverified):
        verified_payload(signed_with_x5c(entries), ROOTS, NOW)


def test_the_untouched_chain_signed_here_verifies() -> None:
    assert verified_payload(signed_with_x5c(DERS), ROOTS, NOW) == {"productId": "coins_300", "n": 1}


def test_a_chain_is_walked_once_and_still_checked_against_the_time() -> None:
    chains = Chains(load_roots([CHAIN.root_pem()]))
    for _ in range(3):
        assert verified_payload(GENUINE, chains, NOW) == {"productId": "coins_300", "n": 1}
    assert chains.walks == 1
    with pytest.raises(Unverified, match="not valid now"):
        verified_payload(GENUINE, chains, NOW + dt.timedelta(days=400))
    assert chains.walks == 1  # refused from what was remembered of it
    stranger = Chain.new()
    with pytest.raises(Unverified, match="does not verify"):  # the JWS is verified every time
        verified_payload(CHAIN.sign({"n": 2}, key=stranger.key), chains, NOW)
    for _ in range(2):  # a chain that did not hold is not remembered
        with pytest.raises(Unverified):
            verified_payload(stranger.sign({"n": 3}), chains, NOW)
    assert chains.walks == 3


def test_the_least_recently_used_chain_is_forgotten_first() -> None:
    chains = Chains(load_roots([CHAIN.root_pem()]), size=2)
    first, second, third = (CHAIN.issue_leaf() for _ in range(3))
    for signer in (first, second, first, third, first):
        verified_payload(signer.sign({"n": 1}), chains, NOW)
    assert chains.walks == 3
    verified_payload(second.sign({"n": 1}), chains, NOW)  # forgotten when third came
    assert chains.walks == 4
