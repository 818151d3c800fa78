"""Property tests of the HTTP body path and the ng client's reply readers: a value or the
documented error (InvalidParams, EnvelopeError, ValueError), and the depth check agreeing with
the real nesting of any JSON text."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.accounts.api import LoginRequest, RegisterRequest
from lwork.errors import InvalidParams
from lwork.http.decode import MAX_JSON_DEPTH, parse_struct, too_deep
from lwork.http.envelope import EnvelopeError, unwrap_request
from lwork.http.server import HttpEdge
from lwork.media.ng import bencode
from lwork.media.ng.results import parse_call_stats
from lwork.media.ng.transport import to_text
from lwork.push.api import PollRequest

FUZZ = settings(max_examples=400, deadline=None)
JSONISH = st.sampled_from(list(b'[]{}",:\\ \t\n0123456789.-eEtrufalsn"\x00\xff'))


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


# Strings full of what the depth check must not mistake for structure.
tricky_text = st.text(alphabet='[]{}"\\/ab\n\u2028é', max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | tricky_text
)


@st.composite
def nested_json(draw: st.DrawFn) -> Any:
    """A value nested exactly ``target`` deep somewhere, with shallower siblings around it."""
    target = draw(st.integers(0, MAX_JSON_DEPTH + 8))
    value: Any = draw(scalars)
    for _ in range(target):
        siblings = draw(st.lists(scalars | st.lists(scalars, max_size=2), max_size=2))
        if draw(st.booleans()):
            value = [*siblings, value] if draw(st.booleans()) else [value, *siblings]
        else:
            keys = draw(st.lists(tricky_text, max_size=2, unique=True))
            value = {**dict(zip(keys, siblings, strict=False)), draw(tricky_text): value}
    return value


@FUZZ
@given(nested_json(), st.booleans())
def test_depth_check_agrees_with_the_real_nesting(value: Any, spaced: bool) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=1 if spaced else None).encode()
    assert too_deep(text) == (depth(value) > MAX_JSON_DEPTH), text


@FUZZ
@given(st.lists(JSONISH, max_size=400).map(bytes))
def test_depth_check_never_fails_and_agrees_whenever_the_text_is_json(raw: bytes) -> None:
    deep = too_deep(raw)
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return
    assert deep == (depth(value) > MAX_JSON_DEPTH)


def edge_path(raw: bytes) -> None:
    """The edge's steps for a body, each allowed only its documented error."""
    if too_deep(raw):
        return
    for struct in (LoginRequest, RegisterRequest, PollRequest):
        try:
            msgspec.json.decode(raw, type=struct)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass
        try:
            body = HttpEdge._parse_body(raw)
            parse_struct(struct, {} if body is None else body)
        except InvalidParams as exc:
            assert exc.field


@FUZZ
@given(st.binary(max_size=300) | st.lists(JSONISH, max_size=300).map(bytes))
def test_any_body_is_a_request_or_invalid_params(raw: bytes) -> None:
    edge_path(raw)


@FUZZ
@given(nested_json() | st.dictionaries(st.sampled_from(["acc", "pwd", "device_id"]), scalars))
def test_any_envelope_is_a_body_or_envelope_error(value: Any) -> None:
    payload = base64.b64encode(json.dumps(value).encode()).decode()
    try:
        unwrapped = unwrap_request({"data_enc": "1234567" + payload})
    except EnvelopeError:
        assert depth(value) > MAX_JSON_DEPTH
        return
    assert unwrapped == json.loads(json.dumps(value))


@FUZZ
@given(st.text(max_size=200), st.binary(max_size=200))
def test_any_data_enc_text_is_a_body_or_envelope_error(text: str, raw: bytes) -> None:
    for value in (text, "abcdefg" + base64.b64encode(raw).decode(), "abcdefg" + text):
        try:
            unwrap_request({"data_enc": value})
        except EnvelopeError:
            pass


_replies = st.recursive(
    st.integers() | st.binary(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    b"tags",
                    b"medias",
                    b"streams",
                    b"stats",
                    b"ssrc",
                    b"tag",
                    b"packets",
                    b"bytes",
                    b"local port",
                    b"endpoint",
                    b"totals",
                    b"RTP",
                    b"RTCP",
                    b"in",
                    b"out",
                    b"created",
                    b"result",
                ]
            )  # fmt: skip
            | st.binary(max_size=6),
            inner,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@FUZZ
@given(_replies, st.binary(max_size=200))
def test_ng_replies_read_or_value_error(reply: Any, raw: bytes) -> None:
    """What the ng client reads from a relay: any bencode value, or any datagram."""
    for data in (bencode.encode(reply), raw):
        try:
            decoded = bencode.decode(data)
        except ValueError:
            continue
        if isinstance(decoded, dict):
            try:
                parse_call_stats(to_text(decoded))
            except ValueError:
                pass
