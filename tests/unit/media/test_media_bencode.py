import pytest

from lwork.media.ng import bencode


def test_encodes_rtpengine_documented_ping_and_pong() -> None:
    assert bencode.encode({"command": "ping"}) == b"d7:command4:pinge"
    assert bencode.decode(b"d6:result4:ponge") == {b"result": b"pong"}


def test_round_trip_nested_values_with_sorted_keys() -> None:
    value: dict[str, bencode.Encodable] = {
        "sdp": "v=0\r\n",
        "flags": ["trust address", b"\xff"],
        "n": -42,
        "d": {"z": 0},
    }
    encoded = bencode.encode(value)
    assert encoded.startswith(b"d1:dd1:zi0ee5:flags")
    assert bencode.decode(encoded) == {
        b"sdp": b"v=0\r\n",
        b"flags": [b"trust address", b"\xff"],
        b"n": -42,
        b"d": {b"z": 0},
    }


def test_accepts_unsorted_keys_as_rtpengine_sends_them() -> None:
    assert bencode.decode(b"d7:command5:offer4:abcdi1ee") == {b"command": b"offer", b"abcd": 1}


def test_bool_encodes_as_integer() -> None:
    assert bencode.encode([True, False]) == b"li1ei0ee"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"i12",
        b"i-0e",
        b"i03e",
        b"ie",
        b"5:abc",
        b"d3:key",
        b"l",
        b"x",
        b"i1ei2e",
        b"999999999999999:",
        b"d i1ee",
    ],
)
def test_malformed_input_is_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        bencode.decode(data)


def test_nesting_bomb_is_refused_without_recursion_error() -> None:
    with pytest.raises(ValueError, match="deep"):
        bencode.decode(b"l" * 10_000 + b"e" * 10_000)


def test_item_count_is_bounded() -> None:
    many = b"l" + b"i0e" * (bencode.MAX_ITEMS + 1) + b"e"
    with pytest.raises(ValueError, match="items"):
        bencode.decode(many)


def test_unencodable_type_is_value_error() -> None:
    with pytest.raises(ValueError):
        bencode.encode(1.5)  # type: ignore[arg-type]
