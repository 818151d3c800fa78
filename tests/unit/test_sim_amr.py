from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.sim.amr import MAGIC, demo_clip, parse_storage, rtp_payload


def test_the_shipped_clip() -> None:
    frames = demo_clip()
    assert len(frames) >= 150  # 3 s of 20 ms frames
    assert all(len(f) == 32 for f in frames if (f[0] >> 3) & 0x0F == 7)  # 12.2 kbit/s
    payload = rtp_payload(frames[0])
    assert payload[0] == 0xF0 and payload[1] & 0x80 == 0 and payload[2:] == frames[0][1:]


@pytest.mark.parametrize(
    "data", [b"", b"#!AMR-WB\n", MAGIC + bytes([7 << 3]) + b"\x00" * 5, MAGIC + bytes([10 << 3])]
)
def test_malformed_files(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_storage(data)


@given(st.binary(max_size=200))
def test_garbage_is_frames_or_value_error(tail: bytes) -> None:
    try:
        frames = parse_storage(MAGIC + tail)
    except ValueError:
        return
    assert b"".join(frames) == tail
