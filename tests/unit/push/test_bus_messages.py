"""Bus messages on the wire: every type survives encode/decode through the one decoder the Redis
bus uses, and the ``kind`` tag alone picks the type."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.push.bus import (
    BusMessage,
    CallReply,
    CallRequest,
    Kick,
    Replaced,
    Resync,
    SessionEnded,
    SessionsChanged,
    Wake,
)

DECODER = msgspec.json.Decoder(BusMessage)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
objects = st.dictionaries(st.text(), json_values, max_size=5)
text = st.text()

STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    Wake: st.builds(Wake, text, text, objects),
    Kick: st.builds(Kick, text),
    SessionEnded: st.builds(SessionEnded, text),
    Replaced: st.builds(Replaced, text, text),
    SessionsChanged: st.builds(SessionsChanged, text),
    Resync: st.just(Resync()),
    CallRequest: st.builds(CallRequest, text, text, text, text, text, objects),
    CallReply: st.builds(
        CallReply, text, text, reply=objects, failed=st.none() | text, extra=objects
    ),
}


def test_every_message_type_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(typing.get_args(BusMessage))


@given(st.one_of(*STRATEGIES.values()))
def test_every_message_round_trips_through_the_bus_decoder(message: BusMessage) -> None:
    decoded = DECODER.decode(msgspec.json.encode(message))
    assert type(decoded) is type(message)
    assert decoded == message


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b'{"kind":"kick","device":"u/A"}', Kick("u/A")),
        (b'{"kind":"session_ended","device":"u/A"}', SessionEnded("u/A")),
        (b'{"kind":"sessions_changed","account":"u"}', SessionsChanged("u")),
        (b'{"kind":"resync"}', Resync()),
        (b'{"kind":"call_reply","node":"n1","request_id":"r","failed":"x"}',
         CallReply("n1", "r", failed="x")),
    ],
)  # fmt: skip
def test_the_kind_tag_picks_the_type(wire: bytes, expected: BusMessage) -> None:
    assert DECODER.decode(wire) == expected


@pytest.mark.parametrize(
    "wire",
    [
        b'{"device":"u/A"}',  # no kind
        b'{"kind":"kick"}',  # a kick names no device
        b'{"kind":"sessions_changed","device":"u"}',  # an account's change names the account
        b'{"kind":"replaced","device":"u/A","poll_id":5}',
    ],
)
def test_a_message_missing_its_routing_key_or_of_the_wrong_shape_is_refused(wire: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        DECODER.decode(wire)
