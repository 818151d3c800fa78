"""The pure relay engine: latching, forwarding decisions, RTCP handling."""

import pytest

from lwork.media.relay import rtcp
from lwork.media.relay.leg_reports import leg_quality, own_report
from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.session import MAX_STREAMS_PER_LEG, Leg
from lwork.media.relay.token_bucket import TokenBucket

A = ("192.0.2.1", 4000)
A_LTE = ("198.51.100.9", 61000)
B = ("192.0.2.2", 5000)
STRAY = ("203.0.113.66", 9999)


def _pair() -> tuple[Leg, Leg]:
    a = Leg(tag="a", rtp_port=30000, relay_ssrc=111, created=0.0, advertised=A)
    b = Leg(tag="b", rtp_port=30002, relay_ssrc=222, created=0.0, advertised=B)
    a.other, b.other = b, a
    return a, b


def _rtp(seq: int, ssrc: int = 0xA, pt: int = 102) -> bytes:
    return bytes(RtpPacket(pt, seq, seq * 160, ssrc, b"\x00" * 32))


def test_forwards_to_advertised_address_until_the_other_side_latches() -> None:
    a, b = _pair()
    assert a.receive_rtp(_rtp(1), A, 1.0) == B
    assert b.receive_rtp(_rtp(1, ssrc=0xB), ("192.0.2.2", 5555), 1.0) == A
    assert a.receive_rtp(_rtp(2), A, 1.02) == ("192.0.2.2", 5555)
    assert b.sent_packets == 2


def test_latches_first_source_and_drops_a_stray_sender() -> None:
    a, _ = _pair()
    a.receive_rtp(_rtp(1), A, 1.0)
    assert a.receive_rtp(_rtp(1, ssrc=0xBAD), STRAY, 1.01) is None
    assert a.rtp_peer == A
    assert a.rtp.errors == 1
    assert a.receivers.keys() == {0xA}


def test_relatches_at_once_when_the_known_stream_moves_wifi_to_lte() -> None:
    a, _ = _pair()
    a.receive_rtp(_rtp(1), A, 1.0)
    a.rtcp_peer = (A[0], A[1] + 1)
    assert a.receive_rtp(_rtp(2), A_LTE, 1.02) == B
    assert a.rtp_peer == A_LTE
    assert a.rtcp_peer is None  # relearned from the next RTCP packet
    assert a.relatches == 1
    assert a.receivers[0xA].lost == 0


def test_relatches_to_a_new_stream_after_the_old_source_went_silent() -> None:
    a, _ = _pair()
    a.receive_rtp(_rtp(1), A, 1.0)
    assert a.receive_rtp(_rtp(1, ssrc=0xC), A_LTE, 1.5) is None
    assert a.receive_rtp(_rtp(1, ssrc=0xC), A_LTE, 2.0) == B
    assert a.rtp_peer == A_LTE


def test_a_sender_inventing_ssrcs_cannot_grow_the_legs_statistics() -> None:
    a, _ = _pair()
    assert a.receive_rtp(_rtp(1, ssrc=0xA), A, 1.0) == B
    for n in range(1, 200):  # every packet a new SSRC
        assert a.receive_rtp(_rtp(n, ssrc=0x1000 + n), A, 1.0 + n * 0.01) == B
        if n % 10 == 0:
            a.receive_rtp(_rtp(n, ssrc=0xA), A, 1.0 + n * 0.01 + 0.001)  # the real stream
    assert len(a.receivers) == MAX_STREAMS_PER_LEG
    assert 0xA in a.receivers  # still heard: kept
    assert 0x1000 + 199 in a.receivers and 0x1001 not in a.receivers  # stalest forgotten
    assert a.streams_forgotten == 200 - MAX_STREAMS_PER_LEG
    assert a.rtp.packets == 200 + 19  # all accounted and forwarded
    # the relay's own RTCP stays one datagram
    assert len(own_report(a, 0, 0, 3.0, a.relay_ssrc, 0, 0)) < 1500


def test_a_flooding_phone_is_held_to_its_packet_rate() -> None:
    a, b = _pair()
    a.flood = TokenBucket(100.0, 0.0)
    # 1,000 packets within 10 ms: a second's worth of credit, plus 10 ms of refill
    forwarded = sum(a.receive_rtp(_rtp(n), A, 1.0 + n * 1e-5) is not None for n in range(1000))
    assert 100 <= forwarded <= 101
    assert a.rtp.errors == a.flood_drops == 1000 - forwarded
    assert a.rtp.packets == forwarded and b.sent_packets == forwarded
    # RTCP from the latched phone draws on the same budget
    a.rtcp_peer = (A[0], A[1] + 1)
    sr = bytes(rtcp.SenderReport(0xA, 0, 0, 0, 0))
    assert a.receive_rtcp(sr, a.rtcp_peer, 1.0 + 999e-5) is None and a.rtcp.errors == 1
    # a second later the phone is heard again
    assert a.receive_rtp(_rtp(2000), A, 2.1) == B


def test_a_paced_phone_never_meets_the_rate_limit() -> None:
    a, _ = _pair()
    a.flood = TokenBucket(100.0, 0.0)
    for n in range(3000):  # 60 s of AMR, 50 a second, with a 40-packet burst after a stall
        at = 1.0 + n * 0.02 if not 1000 <= n < 1040 else 1.0 + 1040 * 0.02 + (n - 1000) * 1e-4
        assert a.receive_rtp(_rtp(n), A, at) == B
    assert a.rtp.errors == 0 and a.flood_drops == 0


def test_garbage_is_counted_and_dropped() -> None:
    a, _ = _pair()
    for junk in (b"", b"\x00" * 40, b"\x80\x00\x00"):
        assert a.receive_rtp(junk, A, 1.0) is None
        assert a.receive_rtcp(junk, A, 1.0) is None
    assert a.rtp.errors == 3 and a.rtcp.errors == 3
    assert a.rtp_peer is None


def test_rtcp_forwarding_and_rtt_via_forwarded_sender_report() -> None:
    a, b = _pair()
    ntp = rtcp.ntp_from_unix(1_700_000_000.0)
    sr = bytes(rtcp.SenderReport(0xA, ntp, 0, 5, 100))
    assert a.receive_rtcp(sr, (A[0], A[1] + 1), 10.0) == (B[0], B[1] + 1)
    assert a.last_sr == (rtcp.ntp_middle32(ntp), 10.0)
    # B answers the forwarded SR after holding it 0.1 s; the path relay<->B took 0.04 s
    block = rtcp.ReportBlock(0xA, 0, 0, 0, 0, rtcp.ntp_middle32(ntp), int(0.1 * 65536))
    rr = bytes(rtcp.ReceiverReport(0xB, (block,)))
    assert b.receive_rtcp(rr, (B[0], B[1] + 1), 10.14) == (A[0], A[1] + 1)
    assert b.rtt.last_ms == pytest.approx(40.0, abs=0.02)
    assert b.remote_view is not None and b.remote_view.fraction_lost == 0.0


def test_own_report_carries_reception_blocks_and_is_answerable() -> None:
    a, _ = _pair()
    for seq in (1, 2, 4):
        a.receive_rtp(_rtp(seq), A, 1.0 + seq * 0.02)
    a.receive_rtcp(bytes(rtcp.SenderReport(0xA, 123 << 16, 0, 0, 0)), A, 1.5)
    raw = own_report(a, 0x0000_1234_5678_0000, 7, 2.0, a.relay_ssrc, 5, 20)
    sr, sdes = rtcp.parse_compound(raw)
    assert isinstance(sr, rtcp.SenderReport) and isinstance(sdes, rtcp.SourceDescription)
    assert (sr.ssrc, sr.packet_count, sr.octet_count) == (111, 5, 20)
    (block,) = sr.reports
    assert (block.ssrc, block.cumulative_lost, block.fraction_lost) == (0xA, 1, 64)
    assert block.lsr == 123 and block.dlsr == 32768  # 0.5 s since A's SR
    answer = rtcp.ReportBlock(111, 0, 0, 0, 0, lsr=0x1234_5678, dlsr=0)
    a.receive_rtcp(bytes(rtcp.ReceiverReport(0xA, (answer,))), A, 2.03)
    assert a.rtt.last_ms == pytest.approx(30.0)
    quality = leg_quality(a)
    assert quality is not None
    assert (quality.packets_received, quality.packets_lost) == (3, 1)
    assert quality.rtt_ms == pytest.approx(30.0)
    assert quality.interval_loss == pytest.approx(0.25)


def test_telephone_events_are_forwarded_without_disturbing_jitter() -> None:
    a, _ = _pair()
    a.receive_rtp(_rtp(1), A, 1.0)
    assert a.receive_rtp(_rtp(2, pt=101), A, 1.5) == B
    a.receive_rtp(_rtp(3), A, 1.04)
    assert a.receivers[0xA].jitter == pytest.approx(0.0, abs=1e-9)
    assert a.rtp.packets == 3
