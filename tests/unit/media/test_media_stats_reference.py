"""`StreamReceiver`'s hot path against a plain, literal transcription of RFC 3550 A.8.

The receiver reads its state into locals and folds the signed timestamp difference inline for
speed; these tests pin that it still computes exactly what the appendix says.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.media.relay.stats import StreamReceiver

CLOCK = 8000


def _reference_jitter(packets: list[tuple[int, float]]) -> tuple[float, float]:
    """(final J, mean of J after each update) per A.8, timestamps compared modulo 2**32."""
    jitter, total, samples = 0.0, 0.0, 0
    for (ts_prev, at_prev), (ts, at) in zip(packets, packets[1:], strict=False):
        ts_delta = (ts - ts_prev) % (1 << 32)
        if ts_delta >= 1 << 31:
            ts_delta -= 1 << 32
        d = (at - at_prev) * CLOCK - ts_delta
        jitter += (abs(d) - jitter) / 16
        total += jitter
        samples += 1
    return jitter, (total / samples if samples else 0.0)


@given(
    start_ts=st.integers(0, (1 << 32) - 1),
    steps=st.lists(
        st.tuples(st.integers(-480, 960), st.floats(0.0, 0.2, allow_nan=False)),
        min_size=1,
        max_size=60,
    ),
)
def test_jitter_equals_the_literal_a8_computation(
    start_ts: int, steps: list[tuple[int, float]]
) -> None:
    packets = [(start_ts, 1.0)]
    for ts_step, gap in steps:
        ts, at = packets[-1]
        packets.append(((ts + ts_step) % (1 << 32), at + gap))
    receiver = StreamReceiver(1, CLOCK, 0, packets[0][1])
    for seq, (ts, at) in enumerate(packets):
        receiver.on_packet(seq, ts, 172, at)
    jitter, average = _reference_jitter(packets)
    assert receiver.jitter == pytest.approx(jitter, abs=1e-6)
    assert receiver.average_jitter_ms == pytest.approx(average * 1000 / CLOCK, abs=1e-6)
    assert (receiver.received, receiver.lost) == (len(packets), 0)


def test_timestamp_wrap_is_not_a_jitter_spike() -> None:
    receiver = StreamReceiver(1, CLOCK, 0, 0.0)
    for seq, ts in enumerate([(1 << 32) - 320, (1 << 32) - 160, 0, 160]):
        receiver.on_packet(seq, ts, 172, seq * 0.02)
    assert receiver.jitter == pytest.approx(0.0, abs=1e-6)
