"""Which frequencies a stretch of 16-bit PCM holds: Goertzel's single-bin DFT, no numpy."""

from __future__ import annotations

import math
import struct


def samples(pcm: bytes) -> list[int]:
    """16-bit signed little-endian PCM as integers."""
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2]))


def power(values: list[int], frequency: float, rate: int = 8000) -> float:
    """The power of `values` at `frequency` (Goertzel), normalised by their length."""
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    before, earlier = 0.0, 0.0
    for value in values:
        before, earlier = value + coefficient * before - earlier, before
    return (before * before + earlier * earlier - coefficient * before * earlier) / max(
        1, len(values)
    ) ** 2


def dominant(values: list[int], wanted: tuple[float, ...], others: tuple[float, ...]) -> float:
    """How many times stronger the weakest `wanted` frequency is than the strongest of
    `others` (a tone is there when this is large)."""
    weakest = min(power(values, f) for f in wanted)
    strongest = max(power(values, f) for f in others)
    return weakest / max(strongest, 1e-9)
