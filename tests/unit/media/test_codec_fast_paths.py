"""The codecs' fast paths (one frame per packet, whole-frame table lookups, pre-bound ctypes
calls) give exactly what their general or per-sample reference gives, for any input."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.media.codecs import amr_payload, amrnb
from lwork.media.codecs.g711 import (
    _linear_to_alaw,
    _linear_to_mulaw,
    alaw_encode,
    mulaw_encode,
)

FRAME_TYPES = [*range(9), amr_payload.NO_DATA]
needs_amrnb = pytest.mark.skipif(amrnb.available() is not None, reason=str(amrnb.available()))


@st.composite
def storage_frames(draw: st.DrawFn) -> bytes:
    """A storage-format frame of any type with any speech bits (zero padding, as `parse` of
    the bandwidth-efficient form gives)."""
    frame_type = draw(st.sampled_from(FRAME_TYPES))
    quality = draw(st.integers(0, 1))
    bits = 0 if frame_type == amr_payload.NO_DATA else amr_payload.SPEECH_BITS[frame_type]
    speech = draw(st.integers(0, (1 << bits) - 1)) if bits else 0
    size = (bits + 7) // 8
    return bytes([frame_type << 3 | quality << 2]) + (speech << (8 * size - bits)).to_bytes(size)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-32768, 32767), max_size=200))
def test_g711_encoding_a_frame_is_encoding_each_sample(samples: list[int]) -> None:
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    assert alaw_encode(pcm) == bytes(_linear_to_alaw(s) for s in samples)
    assert mulaw_encode(pcm) == bytes(_linear_to_mulaw(s) for s in samples)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40), st.booleans())
def test_one_frame_gives_what_parse_gives_or_leaves_it_to_parse(
    payload: bytes, octet: bool
) -> None:
    frame = amr_payload.one_frame(payload, octet)
    if frame is not None:
        assert amr_payload.parse(payload, octet)[1] == [frame]
        assert amr_payload.payload_size([frame], octet) == len(payload)


@settings(max_examples=500, deadline=None)
@given(storage_frames(), st.booleans(), st.integers(0, 15), st.integers(0, 3))
def test_every_one_frame_payload_takes_the_fast_path(
    frame: bytes, octet: bool, cmr: int, pad: int
) -> None:
    payload = amr_payload.build([frame], octet, cmr)
    assert amr_payload.one_frame(payload, octet) == frame
    assert amr_payload.parse(payload, octet) == (cmr, [frame])
    if octet and len(frame) > 1:  # octet-aligned padding bits are kept as they came
        odd = payload[:-1] + bytes([payload[-1] | pad])
        assert amr_payload.one_frame(odd, octet) == amr_payload.parse(odd, octet)[1][0]
    # Padded, or a second frame: not one frame exactly, so `parse` decides.
    assert amr_payload.one_frame(payload + b"\x00", octet) is None


@settings(max_examples=500, deadline=None)
@given(st.one_of(storage_frames(), st.binary(max_size=40)), st.booleans(), st.integers(0, 15))
def test_building_one_frame_is_the_general_build_of_one(
    frame: bytes, octet: bool, cmr: int
) -> None:
    try:
        general = amr_payload._build_many([frame], octet, cmr)
    except ValueError:
        with pytest.raises(ValueError):
            amr_payload.build([frame], octet, cmr)
        return
    assert amr_payload.build([frame], octet, cmr) == general


@needs_amrnb
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), storage_frames()), st.binary(max_size=8)),
                min_size=1, max_size=12))  # fmt: skip
def test_the_decoder_reads_a_frame_and_nothing_after_it(
    frames: list[tuple[bytes | None, bytes]],
) -> None:
    exact, followed = amrnb.Decoder(), amrnb.Decoder()
    for frame, after in frames:
        assert exact.decode(frame) == followed.decode(None if frame is None else frame + after)
    assert exact.concealed == followed.concealed


@needs_amrnb
def test_an_encoder_follows_its_mode_from_frame_to_frame() -> None:
    rng = random.Random(7)
    pcm = struct.pack("<160h", *(rng.randint(-8000, 8000) for _ in range(160)))
    encoder = amrnb.Encoder()
    sizes = []
    for mode in (7, 0, 4, 7):
        encoder.mode = mode
        frame = encoder.encode(pcm)
        sizes.append((frame[0] >> 3, len(frame)))
    assert sizes == [(7, 32), (0, 13), (4, 20), (7, 32)]
    encoder.mode = 8
    with pytest.raises(ValueError):
        encoder.encode(pcm)
