"""G.711 A-law (PCMA) and mu-law (PCMU) as table lookups (ITU-T G.711).

Linear audio is 16-bit signed little-endian PCM at 8 kHz: what an AMR-NB decoder gives and its
encoder takes. Decoding builds the two bytes of each sample with two `bytes.translate` calls and
interleaves them; encoding looks every sample up in a 64 KiB table indexed by its 16 bits, with
one `operator.itemgetter` over the whole frame: no Python bytecode runs per sample either way.
"""

from __future__ import annotations

import operator
import sys
from typing import Final

_MU_BIAS: Final = 0x84
_MU_CLIP: Final = 32635


def _alaw_to_linear(code: int) -> int:
    code ^= 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (
        (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return magnitude if code & 0x80 else -magnitude


def _mulaw_to_linear(code: int) -> int:
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    magnitude = ((((code & 0x0F) << 3) + _MU_BIAS) << exponent) - _MU_BIAS
    return -magnitude if code & 0x80 else magnitude


def _linear_to_alaw(sample: int) -> int:
    """The A-law code of a 16-bit sample: the 13 high bits decide (G.711 §A)."""
    sample >>= 3  # 13-bit
    if sample >= 0:
        sign = 0xD5  # sign bit set, even bits inverted (0x55)
    else:
        sign = 0x55
        sample = -sample - 1
    if sample > 0xFFF:
        sample = 0xFFF
    if sample < 0x20:
        code = sample >> 1
    else:
        exponent = sample.bit_length() - 5  # 1..7
        code = (exponent << 4) | ((sample >> exponent) & 0x0F)
    return code ^ sign


def _linear_to_mulaw(sample: int) -> int:
    """The mu-law code of a 16-bit sample: the 14 high bits decide (G.711 §B)."""
    sample >>= 2  # 14-bit
    if sample < 0:
        sample, sign = -sample, 0x7F
    else:
        sign = 0xFF
    sample = min(sample, _MU_CLIP >> 2) + (_MU_BIAS >> 2)
    exponent = max(0, sample.bit_length() - 6)  # 0..7
    code = (exponent << 4) | ((sample >> (exponent + 1)) & 0x0F)
    return code ^ sign


def _decode_tables(to_linear: dict[int, int]) -> tuple[bytes, bytes]:
    low = bytes(to_linear[code] & 0xFF for code in range(256))
    high = bytes((to_linear[code] >> 8) & 0xFF for code in range(256))
    return low, high


def _encode_table(encode: object) -> bytes:
    assert callable(encode)
    # Indexed by the sample's 16 bits read as unsigned (memoryview 'H'): 0x8000.. are negative.
    return bytes(encode(index - 0x10000 if index & 0x8000 else index) for index in range(0x10000))


ALAW_TO_LINEAR: Final = {code: _alaw_to_linear(code) for code in range(256)}
MULAW_TO_LINEAR: Final = {code: _mulaw_to_linear(code) for code in range(256)}
_ALAW_LOW, _ALAW_HIGH = _decode_tables(ALAW_TO_LINEAR)
_MULAW_LOW, _MULAW_HIGH = _decode_tables(MULAW_TO_LINEAR)
_TO_ALAW: Final = _encode_table(_linear_to_alaw)
_TO_MULAW: Final = _encode_table(_linear_to_mulaw)
_LITTLE: Final = sys.byteorder == "little"


def _decode(payload: bytes, low: bytes, high: bytes) -> bytes:
    out = bytearray(2 * len(payload))
    out[0::2] = payload.translate(low)
    out[1::2] = payload.translate(high)
    return bytes(out)


def _encode(pcm: bytes, table: bytes) -> bytes:
    if len(pcm) % 2:
        raise ValueError("G.711: linear PCM has an odd number of bytes")
    samples = memoryview(pcm).cast("H")
    if not _LITTLE:
        samples = memoryview(bytes(pcm[1::2] + pcm[0::2])).cast("H")  # pragma: no cover
    if len(samples) < 2:  # itemgetter of one index gives an int, of none is an error
        return bytes(map(table.__getitem__, samples))
    # One C call looks up every sample: half the CPU of map(table.__getitem__, samples), the
    # tuple of codes it builds notwithstanding (measured: 4.6 vs 9.2 us a 20 ms frame).
    codes: tuple[int, ...] = operator.itemgetter(*samples)(table)
    return bytes(codes)


def alaw_decode(payload: bytes) -> bytes:
    """PCMA payload -> 16-bit little-endian PCM (two bytes per byte in)."""
    return _decode(payload, _ALAW_LOW, _ALAW_HIGH)


def mulaw_decode(payload: bytes) -> bytes:
    """PCMU payload -> 16-bit little-endian PCM."""
    return _decode(payload, _MULAW_LOW, _MULAW_HIGH)


def alaw_encode(pcm: bytes) -> bytes:
    """16-bit little-endian PCM -> PCMA payload; ValueError for an odd length."""
    return _encode(pcm, _TO_ALAW)


def mulaw_encode(pcm: bytes) -> bytes:
    """16-bit little-endian PCM -> PCMU payload; ValueError for an odd length."""
    return _encode(pcm, _TO_MULAW)
