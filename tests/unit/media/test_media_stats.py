import pytest

from lwork.media.relay.rtcp import ReportBlock
from lwork.media.relay.stats import RemoteView, RttEstimator, StreamReceiver


def _feed(receiver: StreamReceiver, packets: list[tuple[int, int, float]]) -> None:
    for seq, ts, arrival in packets:
        receiver.on_packet(seq, ts, 172, arrival)


def test_jitter_matches_hand_computation_a8() -> None:
    # Transit changes: 0, +40, -40 timestamp units -> J = 0, 2.5, 2.5 + (40 - 2.5) / 16
    r = StreamReceiver(ssrc=1, clock_rate=8000, sequence=0, now=0.0)
    _feed(r, [(0, 0, 0.000), (1, 160, 0.020), (2, 320, 0.045), (3, 480, 0.060)])
    assert r.jitter == pytest.approx(4.84375)
    assert r.jitter_ms == pytest.approx(4.84375 / 8)
    assert r.average_jitter_ms == pytest.approx((0 + 2.5 + 4.84375) / 3 / 8)


def test_loss_and_fraction_lost_a3() -> None:
    r = StreamReceiver(1, 8000, 10, 0.0)
    _feed(r, [(s, s * 160, s * 0.02) for s in (10, 11, 13, 14, 17)])
    assert (r.expected, r.received, r.lost) == (8, 5, 3)
    assert r.close_interval() == 96  # 3/8 * 256
    assert r.last_interval_loss == pytest.approx(3 / 8)
    _feed(r, [(18, 18 * 160, 0.36), (20, 20 * 160, 0.40)])
    assert r.close_interval() == 256 // 3  # interval: expected 3, received 2
    assert r.lost == 4


def test_sequence_wrap_counts_cycles() -> None:
    r = StreamReceiver(1, 8000, 65534, 0.0)
    _feed(r, [(65534, 0, 0.0), (65535, 160, 0.02), (0, 320, 0.04), (1, 480, 0.06)])
    assert r.extended_max == 65537
    assert (r.expected, r.lost) == (4, 0)


def test_duplicates_make_loss_negative_and_fraction_zero() -> None:
    r = StreamReceiver(1, 8000, 1, 0.0)
    _feed(r, [(1, 0, 0.0), (2, 160, 0.02), (2, 160, 0.021), (3, 320, 0.04)])
    assert r.lost == -1
    assert r.close_interval() == 0
    assert r.report_block(0, 0).cumulative_lost == -1


def test_sender_restart_is_accepted_after_two_sequential_packets() -> None:
    r = StreamReceiver(1, 8000, 100, 0.0)
    _feed(r, [(100, 0, 0.0), (101, 160, 0.02), (20000, 0, 0.04)])
    assert r.received == 2  # the jump alone is not believed
    _feed(r, [(20001, 160, 0.06)])
    assert (r.base_seq, r.received, r.lost) == (20001, 1, 0)


def test_untimed_packets_do_not_touch_jitter() -> None:
    r = StreamReceiver(1, 8000, 0, 0.0)
    r.on_packet(0, 0, 100, 0.0)
    r.on_packet(1, 0, 100, 0.5, timed=False)  # telephone-event reusing the start timestamp
    r.on_packet(2, 320, 100, 0.04)
    assert r.jitter == 0.0
    assert r.received == 3


def test_report_block_reflects_state() -> None:
    r = StreamReceiver(0xABC, 8000, 65535, 0.0)
    _feed(r, [(65535, 0, 0.0), (1, 320, 0.04)])
    block = r.report_block(lsr=0x1111, dlsr=0x2222)
    assert block == ReportBlock(0xABC, 85, 1, 65537, int(r.jitter), 0x1111, 0x2222)


def test_rtt_from_lsr_dlsr() -> None:
    rtt = RttEstimator()
    rtt.sr_sent(0xAAAA0000, now=10.0)
    block = ReportBlock(1, 0, 0, 0, 0, lsr=0xAAAA0000, dlsr=32768)  # endpoint held it 0.5 s
    assert rtt.on_report(block, now=10.75) == pytest.approx(250.0)
    rtt.sr_sent(0xBBBB0000, now=11.0)
    assert rtt.on_report(ReportBlock(1, 0, 0, 0, 0, 0xBBBB0000, 0), now=11.05) == pytest.approx(
        50.0
    )
    assert rtt.last_ms == pytest.approx(50.0)
    assert rtt.average_ms == pytest.approx(150.0)


def test_rtt_ignores_unknown_zero_and_impossible_reports() -> None:
    rtt = RttEstimator(max_pending=2)
    for key, t in ((1, 0.0), (2, 1.0), (3, 2.0)):
        rtt.sr_sent(key, t)
    assert rtt.on_report(ReportBlock(1, 0, 0, 0, 0, lsr=1, dlsr=0), 5.0) is None  # evicted
    assert rtt.on_report(ReportBlock(1, 0, 0, 0, 0, lsr=0, dlsr=0), 5.0) is None
    assert rtt.on_report(ReportBlock(1, 0, 0, 0, 0, lsr=3, dlsr=65536 * 9), 5.0) is None
    assert rtt.samples == 0


def test_remote_view_converts_units() -> None:
    view = RemoteView.from_block(ReportBlock(1, 64, 7, 0, 80, 0, 0), 8000)
    assert view == RemoteView(0.25, 7, 10.0)
