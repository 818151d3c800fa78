"""What the relay reports about a leg: the quality snapshot `query` returns, and the relay's own
RTCP sender report toward the phone. Pure; runs per query or report interval, not per packet.
"""

from __future__ import annotations

from lwork.media.ng.results import LegQuality
from lwork.media.relay import rtcp
from lwork.media.relay.mos import estimate_mos
from lwork.media.relay.session import Leg


def leg_quality(leg: Leg) -> LegQuality | None:
    """The leg's quality as `query` reports it: its main stream, RTT and the remote view."""
    receiver = leg.main_receiver()
    if receiver is None:
        return None
    remote = leg.remote_view
    return LegQuality(
        ssrc=receiver.ssrc,
        packets_received=receiver.received,
        packets_expected=receiver.expected,
        packets_lost=receiver.lost,
        jitter_ms=receiver.jitter_ms,
        average_jitter_ms=receiver.average_jitter_ms,
        interval_loss=receiver.last_interval_loss,
        rtt_ms=leg.rtt.last_ms,
        average_rtt_ms=leg.rtt.average_ms,
        remote_jitter_ms=remote.jitter_ms if remote else None,
        remote_loss=remote.fraction_lost if remote else None,
        mos=estimate_mos(leg.rtt.average_ms, receiver.jitter_ms, receiver.last_interval_loss),
    )


def own_report(
    leg: Leg, ntp: int, rtp_timestamp: int, now: float, ssrc: int, packets: int, octets: int
) -> bytes:
    """The relay's own compound SR + SDES toward this party (RFC 3550 §6.4.1), as the sender
    ``ssrc`` of ``packets`` and ``octets`` so far, with a report block per stream the party
    sends us."""
    blocks = []
    for receiver in list(leg.receivers.values())[:31]:
        lsr, dlsr = 0, 0
        if leg.last_sr is not None:
            lsr = leg.last_sr[0]
            dlsr = int((now - leg.last_sr[1]) * 65536) & 0xFFFF_FFFF
        blocks.append(receiver.report_block(lsr, dlsr))
    report = rtcp.SenderReport(
        ssrc=ssrc,
        ntp_timestamp=ntp,
        rtp_timestamp=rtp_timestamp,
        packet_count=packets & 0xFFFF_FFFF,
        octet_count=octets & 0xFFFF_FFFF,
        reports=tuple(blocks),
    )
    sdes = rtcp.SourceDescription(((ssrc, ((1, b"lwork-relay"),)),))
    leg.rtt.sr_sent(rtcp.ntp_middle32(ntp), now)
    return bytes(report) + bytes(sdes)
