"""Reported loss, jitter and RTT against the truth of a scripted endpoint, over real UDP."""

import asyncio
import gc
import time
from collections.abc import Iterator

import pytest

from lwork.media.ng.client import NgClient
from lwork.media.relay import rtcp
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.server import RelayServer
from lwork.media.sdp_min import build_sdp

from fakes.rtp_peer import RtpPeer, eventually

HOST = "127.0.0.1"
CLOCK = 8000
SPACING_S = 0.005  # 5 ms packets keep the test short; the A.8 arithmetic is the same
TS_STEP = 40
LOST = {5, 17, 18, 60, 99, 140}
EXTRA_DELAY_MS = [0.0, 3.0, 1.0, 4.0, 0.5, 2.0, 0.0, 3.5]


def _a8_jitter_ms(samples: list[tuple[float, int]]) -> float:
    """RFC 3550 A.8 on (send time, RTP timestamp): the truth the relay must reproduce."""
    jitter = 0.0
    for (t0, ts0), (t1, ts1) in zip(samples, samples[1:], strict=False):
        d = (t1 - t0) * CLOCK - (ts1 - ts0)
        jitter += (abs(d) - jitter) / 16
    return jitter * 1000 / CLOCK


@pytest.fixture(autouse=True)
def no_collections() -> Iterator[None]:
    """The relay runs inside the test process, whose heap holds what hundreds of earlier tests
    left: a full collection there stalled it for up to 236 ms, far more than the 0.5-1 ms these
    timings allow. A relay process of its own has no such heap."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


async def _call(ng: NgClient, a: RtpPeer, b: RtpPeer) -> tuple[int, int]:
    offer = await ng.offer("q", "alice", build_sdp(HOST, a.port))
    answer = await ng.answer("q", "alice", "bob", build_sdp(HOST, b.port))
    return answer.media.port, offer.media.port


async def test_loss_is_exact_and_jitter_within_half_a_millisecond() -> None:
    config = RelayConfig(ng_port=0, port_min=23000, port_max=23999, rtcp_interval_s=60)
    a, b = await RtpPeer.open(), await RtpPeer.open()
    try:
        async with RelayServer(config) as relay, NgClient(*relay.ng_address) as ng:
            port_a, _ = await _call(ng, a, b)
            start = time.monotonic() + 0.01
            sent: list[tuple[float, int]] = []
            total = 160
            for seq in range(total):
                if seq in LOST:
                    continue
                due = start + seq * SPACING_S + EXTRA_DELAY_MS[seq % len(EXTRA_DELAY_MS)] / 1000
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                packet = RtpPacket(102, 1000 + seq, 5000 + seq * TS_STEP, 0xA, bytes(32))
                sent.append((a.send_rtp(packet, (HOST, port_a)), packet.timestamp))
            assert len(await b.wait_rtp(len(sent))) == len(sent)
            stats = await ng.query("q")
            quality = stats.legs["alice"].quality
            assert quality is not None
            assert quality.packets_expected == total  # first and last packets arrive
            assert quality.packets_received == total - len(LOST)
            assert quality.packets_lost == len(LOST)
            truth = _a8_jitter_ms(sent)
            assert truth > 1.0  # the script really varies the delay
            assert quality.jitter_ms == pytest.approx(truth, abs=0.5)
            assert 0 < quality.average_jitter_ms < 10
            assert 1.0 <= quality.mos <= 4.5
    finally:
        a.close()
        b.close()


async def test_rtt_from_an_endpoint_answering_the_relays_sender_report() -> None:
    claimed_hold_s = 0.010  # what the endpoint reports as DLSR
    path_delay_s = 0.030  # extra time it really waits: the round trip the relay must see
    config = RelayConfig(
        ng_port=0, port_min=23000, port_max=23999, rtcp_interval_s=0.2, tick_s=0.02
    )
    a, b = await RtpPeer.open(), await RtpPeer.open()
    truths: list[float] = []
    try:
        async with RelayServer(config) as relay, NgClient(*relay.ng_address) as ng:
            port_a, _ = await _call(ng, a, b)
            for seq in range(3):
                a.send_rtp(RtpPacket(102, seq, seq * 160, 0xA, bytes(32)), (HOST, port_a))
            answered = 0
            deadline = time.monotonic() + 15
            while len(truths) < 3 and time.monotonic() < deadline:
                await a.wait_rtcp(answered + 1, timeout=2)
                if len(a.rtcp_in) <= answered:
                    continue
                received = a.rtcp_in[answered]
                answered += 1
                sr = rtcp.parse_compound(received.data)[0]
                assert isinstance(sr, rtcp.SenderReport)
                assert received.source == (HOST, port_a + 1)
                await asyncio.sleep(claimed_hold_s + path_delay_s)
                block = rtcp.ReportBlock(
                    sr.ssrc,
                    0,
                    0,
                    0,
                    0,
                    lsr=rtcp.ntp_middle32(sr.ntp_timestamp),
                    dlsr=round(claimed_hold_s * 65536),
                )
                reply = bytes(rtcp.ReceiverReport(0xA, (block,)))
                a.send_rtcp(reply, (HOST, port_a + 1))
                truths.append((time.monotonic() - received.arrival - claimed_hold_s) * 1000)
                await eventually(lambda: relay.table.calls["q"].caller.rtt.samples == len(truths))
            last_sr = rtcp.parse_compound(a.rtcp_in[answered - 1].data)[0]
            assert isinstance(last_sr, rtcp.SenderReport)
            (about_a,) = last_sr.reports  # the relay's reception report on our stream
            assert (about_a.ssrc, about_a.cumulative_lost, about_a.highest_sequence) == (0xA, 0, 2)
            stats = await ng.query("q")
            quality = stats.legs["alice"].quality
            assert quality is not None and quality.rtt_ms is not None
            assert len(truths) == 3
            assert quality.rtt_ms == pytest.approx(truths[-1], abs=1.0)
            assert quality.average_rtt_ms == pytest.approx(sum(truths) / 3, abs=1.0)
            assert quality.rtt_ms >= path_delay_s * 1000 - 1.0
    finally:
        a.close()
        b.close()
