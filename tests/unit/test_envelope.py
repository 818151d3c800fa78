"""data_enc (CONTRACT §2): the contract's worked example, both ways, and round trips."""

from __future__ import annotations

import base64
import json
import string

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.http.envelope import EnvelopeError, unwrap_request, unwrap_response, wrap_response

REQUEST = {"uuid": "13800138000", "device_id": "abc", "type": "register"}
WIRE_REQUEST = (
    "Xy7Qa2ZeyJ1dWlkIjoiMTM4MDAxMzgwMDAiLCJkZXZpY2VfaWQiOiJhYmMiLCJ0eXBlIjoicmVnaXN0ZXIifQ=="
)


def test_contract_request_example() -> None:
    assert unwrap_request({"data_enc": WIRE_REQUEST}) == REQUEST


def test_missing_padding_is_tolerated() -> None:
    assert unwrap_request({"data_enc": WIRE_REQUEST.rstrip("=")}) == REQUEST


def test_contract_response_example() -> None:
    body = b'{"status":"ok","session_id":"gw@119.29.62.190@@17"}'
    wrapped = wrap_response(body, noise=("c", "k"))
    assert wrapped == (
        b'{"data_enc":"eyJckzdGF0dXMiOiJvayIsInNlc3Npb25faWQiOiJnd0AxMTkuMjkuNjIuMTkwQEAxNyJ9"}'
    )
    assert unwrap_response(msgspec.json.decode(wrapped)["data_enc"]) == body


@pytest.mark.parametrize(
    "body",
    [
        {"data_enc": "short"},
        {"data_enc": 12345678},
        {"data_enc": WIRE_REQUEST, "other": 1},
        ["data_enc"],
        {"uuid": "1"},
    ],
)
def test_anything_else_is_a_plain_body(body: object) -> None:
    assert unwrap_request(body) == body


@pytest.mark.parametrize("payload", ["1234567!!!!", "1234567" + base64.b64encode(b"{bad").decode()])
def test_undecodable_envelope_is_an_error(payload: str) -> None:
    with pytest.raises(EnvelopeError):
        unwrap_request({"data_enc": payload})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(st.text(max_size=10), json_values, max_size=6),
    st.text(string.ascii_letters + string.digits, min_size=7, max_size=7),
)
def test_round_trip(body: dict[str, object], prefix: str) -> None:
    encoded = prefix + base64.b64encode(json.dumps(body).encode()).decode()
    assert unwrap_request({"data_enc": encoded}) == body
    raw = msgspec.json.encode(body)
    assert unwrap_response(msgspec.json.decode(wrap_response(raw))["data_enc"]) == raw


@given(st.text(max_size=200))
def test_garbage_envelope_never_raises_anything_else(value: str) -> None:
    try:
        unwrap_request({"data_enc": value})
    except EnvelopeError:
        pass
