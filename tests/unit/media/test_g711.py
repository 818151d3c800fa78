"""G.711 tables against two references: Python's audioop (the Sun reference code; gone from
Python 3.13) over every code and every 16-bit sample, and ffmpeg's pcm_alaw/pcm_mulaw over a
real signal."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.media.codecs.g711 import (
    ALAW_TO_LINEAR,
    MULAW_TO_LINEAR,
    alaw_decode,
    alaw_encode,
    mulaw_decode,
    mulaw_encode,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # Python >= 3.13
        audioop = None  # type: ignore[assignment]

EVERY_SAMPLE = struct.pack("<65536h", *range(-32768, 32768))
EVERY_CODE = bytes(range(256))
FFMPEG = shutil.which("ffmpeg")


@pytest.mark.skipif(audioop is None, reason="audioop left Python in 3.13")
def test_every_code_and_every_sample_as_audioop() -> None:
    assert audioop is not None
    assert alaw_decode(EVERY_CODE) == audioop.alaw2lin(EVERY_CODE, 2)
    assert mulaw_decode(EVERY_CODE) == audioop.ulaw2lin(EVERY_CODE, 2)
    assert alaw_encode(EVERY_SAMPLE) == audioop.lin2alaw(EVERY_SAMPLE, 2)
    assert mulaw_encode(EVERY_SAMPLE) == audioop.lin2ulaw(EVERY_SAMPLE, 2)


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed: apt-get install ffmpeg")
@pytest.mark.parametrize(("fmt", "encode", "decode"), [
    ("alaw", alaw_encode, alaw_decode), ("mulaw", mulaw_encode, mulaw_decode),
])  # fmt: skip
def test_a_tone_as_ffmpeg_codes_and_decodes_it(fmt: str, encode: object, decode: object) -> None:
    assert FFMPEG is not None and callable(encode) and callable(decode)
    tone = struct.pack(
        "<8000h", *(int(20000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(8000))
    )
    common = [FFMPEG, "-hide_banner", "-loglevel", "error", "-ar", "8000", "-ac", "1"]
    theirs = subprocess.run(
        [*common, "-f", "s16le", "-i", "-", "-f", fmt, "-"], input=tone, capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    assert encode(tone) == theirs
    back = subprocess.run(
        [*common, "-f", fmt, "-i", "-", "-f", "s16le", "-"], input=theirs, capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    assert decode(theirs) == back


def test_codes_round_trip_and_odd_pcm_is_refused() -> None:
    # Decoding then encoding gives every code back (A-law and mu-law's -0/+0 aside).
    assert alaw_encode(alaw_decode(EVERY_CODE)) == EVERY_CODE
    mu = mulaw_encode(mulaw_decode(EVERY_CODE))
    assert [c for c in range(256) if mu[c] != c] == [0x7F]  # -0 decodes to 0, which is +0 (0xFF)
    assert max(abs(v) for v in ALAW_TO_LINEAR.values()) == 32256
    assert max(abs(v) for v in MULAW_TO_LINEAR.values()) == 32124
    with pytest.raises(ValueError):
        alaw_encode(b"\x00\x01\x02")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_payload_decodes_to_twice_its_length_and_encodes_back(payload: bytes) -> None:
    for encode, decode in ((alaw_encode, alaw_decode), (mulaw_encode, mulaw_decode)):
        pcm = decode(payload)
        assert len(pcm) == 2 * len(payload)
        assert decode(encode(pcm)) == pcm  # a decoded sample is a fixed point
