"""AMR-NB through libopencore-amrnb: a tone we encode is the tone when ffmpeg decodes it (and
when we decode it), and a lost, truncated or lying frame is concealed, never read past."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.media.codecs.amrnb import PCM_BYTES, Decoder, Encoder, available, frame_bytes

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))
FFMPEG = shutil.which("ffmpeg")


def tone(hz: float, seconds: float = 1.0) -> bytes:
    count = int(8000 * seconds)
    return struct.pack(
        f"<{count}h", *(int(12000 * math.sin(2 * math.pi * hz * n / 8000)) for n in range(count))
    )


def power_at(pcm: bytes, hz: float) -> float:
    """Goertzel: the signal's power at `hz`, relative to its total power."""
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    coefficient = 2 * math.cos(2 * math.pi * hz / 8000)
    s1 = s2 = 0.0
    for sample in samples:
        s1, s2 = sample + coefficient * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    total = sum(s * s for s in samples) or 1
    return power / (total * len(samples) / 2)


def encode_all(pcm: bytes) -> list[bytes]:
    encoder = Encoder()
    return [encoder.encode(pcm[i : i + PCM_BYTES]) for i in range(0, len(pcm), PCM_BYTES)]


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed: apt-get install ffmpeg")
def test_our_12_2_frames_are_the_tone_for_ffmpeg_and_for_us() -> None:
    assert FFMPEG is not None
    frames = encode_all(tone(440))
    assert len(frames) == 50 and {len(f) for f in frames} == {32} and frames[0][0] >> 3 == 7
    decoded = subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "amr", "-i", "-", "-f", "s16le",
         "-ar", "8000", "-"],
        input=b"#!AMR\n" + b"".join(frames), capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert len(decoded) == 16000
    steady = decoded[3200:]  # past the codec's start-up
    assert power_at(steady, 440) > 0.8 and power_at(steady, 880) < 0.01
    decoder = Decoder()
    ours = b"".join(decoder.decode(f) for f in frames)[3200:]
    assert power_at(ours, 440) > 0.8 and decoder.concealed == 0


def test_lost_and_bad_frames_are_concealed() -> None:
    frames = encode_all(tone(880))
    decoder = Decoder()
    for frame in frames[:20]:
        decoder.decode(frame)
    lost = decoder.decode(None)
    truncated = decoder.decode(frames[21][:10])
    lying = decoder.decode(bytes([12 << 3]) + bytes(40))  # frame type 12: reserved
    assert {len(lost), len(truncated), len(lying)} == {PCM_BYTES}
    assert decoder.concealed == 3
    assert power_at(lost, 880) > 0.3  # the concealment goes on with the tone, not silence
    with pytest.raises(ValueError):
        Encoder().encode(bytes(100))
    assert frame_bytes(7 << 3) == 32 and frame_bytes(15 << 3) == 1 and frame_bytes(13 << 3) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.binary(max_size=40)), max_size=20))
def test_any_frames_decode_to_20_ms_each(frames: list[bytes | None]) -> None:
    decoder = Decoder()
    assert all(len(decoder.decode(frame)) == PCM_BYTES for frame in frames)
