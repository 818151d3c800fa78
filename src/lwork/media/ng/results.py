"""Typed views of ng `query`/`delete` replies, from the built-in relay or from rtpengine.

rtpengine's documented keys are read where both relays have them; the built-in relay's RTP
measurements arrive in each tag's `quality` dictionary (integers: us, ppm, MOS x 100).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lwork.media.relay.mos import rating


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One RTP or RTCP stream of a leg as the relay sees it."""

    local_port: int | None
    local_address: str | None
    endpoint: tuple[str, int] | None
    advertised: tuple[str, int] | None
    packets: int
    bytes: int
    errors: int
    last_packet: int | None
    confirmed: bool
    ssrc: int | None = None
    """The SSRC rtpengine last saw on this stream (its ``SSRC`` key; None elsewhere)."""


@dataclass(frozen=True, slots=True)
class LegQuality:
    """RFC 3550 measurements by the built-in relay (None from rtpengine)."""

    ssrc: int
    packets_received: int
    packets_expected: int
    packets_lost: int
    jitter_ms: float
    average_jitter_ms: float
    interval_loss: float
    mos: float
    rtt_ms: float | None
    average_rtt_ms: float | None
    remote_jitter_ms: float | None
    remote_loss: float | None


@dataclass(frozen=True, slots=True)
class LegInfo:
    """One call party (SIP tag): its relay ports, latched endpoint and counters."""

    tag: str
    in_dialogue_with: str
    rtp: StreamInfo | None
    rtcp: StreamInfo | None
    quality: LegQuality | None


@dataclass(frozen=True, slots=True)
class RtcpFigures:
    """One of rtpengine's per-SSRC quality blocks (``average MOS``, an entry of ``MOS
    progression``): what the phone sending this SSRC reported in RTCP about the stream it
    receives. rtpengine sends MOS x 10, round-trip times in us, jitter in ms, loss in %."""

    mos: float | None
    rtt_ms: float | None
    """Round trip phone - rtpengine (``round-trip time leg``), else the whole path's."""
    jitter_ms: float | None
    loss: float | None
    """0..1."""


@dataclass(frozen=True, slots=True)
class SsrcInfo:
    """rtpengine's per-SSRC entry; `mos` from `average MOS` when present."""

    ssrc: int
    packets: int
    bytes: int
    cumulative_loss: int
    mos: float | None
    tag: str | None
    average: RtcpFigures | None = None
    latest: RtcpFigures | None = None
    """The last entry of ``MOS progression`` (else the average)."""
    reported_loss: int | None = None
    """``cumulative loss`` as reported, None when rtpengine gave none."""


@dataclass(frozen=True, slots=True)
class CallStats:
    """A typed `query` (or `delete`) reply."""

    created: int
    last_signal: int
    legs: dict[str, LegInfo]
    rtp_packets: int
    rtp_bytes: int
    rtp_errors: int
    rtcp_packets: int
    ssrcs: dict[int, SsrcInfo]


def parse_call_stats(reply: Mapping[str, Any]) -> CallStats:
    """Type a `query`/`delete` reply from either the built-in relay or rtpengine."""
    legs: dict[str, LegInfo] = {}
    tags = reply.get("tags")
    for tag, info in tags.items() if isinstance(tags, dict) else []:
        if not isinstance(info, dict):
            continue
        rtp = rtcp = None
        medias = info.get("medias")
        if isinstance(medias, list) and medias and isinstance(medias[0], dict):
            for stream in medias[0].get("streams") or []:
                parsed = _stream(stream) if isinstance(stream, dict) else None
                if parsed is None:
                    continue
                kinds = stream.get("flags") or []
                if "RTCP" in kinds and rtcp is None:
                    rtcp = parsed
                elif "RTCP" not in kinds and rtp is None:
                    rtp = parsed
        tag = info.get("tag", tag)
        legs[str(tag)] = LegInfo(
            tag=str(tag),
            in_dialogue_with=_peer_tag(info),
            rtp=rtp,
            rtcp=rtcp,
            quality=_quality(info.get("quality")),
        )
    totals = _dict(reply.get("totals"))
    rtp_totals = _dict(totals.get("RTP"))
    rtcp_totals = _dict(totals.get("RTCP"))
    ssrcs: dict[int, SsrcInfo] = {}
    raw_ssrcs = reply.get("SSRC")
    for key, entry in raw_ssrcs.items() if isinstance(raw_ssrcs, dict) else []:
        if not (isinstance(entry, dict) and str(key).isdigit()):
            continue
        average = _dict(entry.get("average MOS"))
        mos = average.get("MOS")
        tag_value = entry.get("tag")
        progression = _dict(entry.get("MOS progression")).get("entries")
        last = progression[-1] if isinstance(progression, list) and progression else average
        loss = entry.get("cumulative loss")
        ssrcs[int(key)] = SsrcInfo(
            ssrc=int(key),
            packets=_int(entry.get("packets")),
            bytes=_int(entry.get("bytes")),
            cumulative_loss=_int(loss),
            mos=mos / 10 if isinstance(mos, int) else None,
            tag=tag_value if isinstance(tag_value, str) else None,
            average=_rtcp_figures(average),
            latest=_rtcp_figures(last),
            reported_loss=loss if isinstance(loss, int) else None,
        )
    return CallStats(
        created=_int(reply.get("created")),
        last_signal=_int(reply.get("last signal", reply.get("last_signal"))),
        legs=legs,
        rtp_packets=_int(rtp_totals.get("packets")),
        rtp_bytes=_int(rtp_totals.get("bytes")),
        rtp_errors=_int(rtp_totals.get("errors")),
        rtcp_packets=_int(rtcp_totals.get("packets")),
        ssrcs=ssrcs,
    )


def _peer_tag(info: dict[str, Any]) -> str:
    """`in dialogue with` (rtpengine < 10) or the offer/answer subscription (rtpengine >= 10)."""
    peer = info.get("in dialogue with")
    if isinstance(peer, str):
        return peer
    for subscription in info.get("subscriptions") or []:
        if isinstance(subscription, dict) and isinstance(subscription.get("tag"), str):
            return str(subscription["tag"])
    return ""


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) else default


def _endpoint(value: Any) -> tuple[str, int] | None:
    if isinstance(value, dict) and isinstance(value.get("address"), str):
        port = value.get("port")
        if isinstance(port, int):
            return (value["address"], port)
    return None


def _rtcp_figures(block: Any) -> RtcpFigures | None:
    if not isinstance(block, dict) or not block:
        return None

    def scaled(key: str, scale: float) -> float | None:
        value = block.get(key)
        return value / scale if isinstance(value, int) else None

    leg_rtt = scaled("round-trip time leg", 1000)
    return RtcpFigures(
        mos=scaled("MOS", 10),
        rtt_ms=leg_rtt if leg_rtt is not None else scaled("round-trip time", 1000),
        jitter_ms=scaled("jitter", 1),
        loss=scaled("packet loss", 100),
    )


def _stream(stream: dict[str, Any]) -> StreamInfo:
    stats = _dict(stream.get("stats"))
    local_port = stream.get("local port")
    last = stream.get("last packet")
    return StreamInfo(
        local_port=local_port if isinstance(local_port, int) else None,
        local_address=_str(stream.get("local address")),
        endpoint=_endpoint(stream.get("endpoint")),
        advertised=_endpoint(stream.get("advertised endpoint")),
        packets=_int(stats.get("packets")),
        bytes=_int(stats.get("bytes")),
        errors=_int(stats.get("errors")),
        last_packet=last if isinstance(last, int) else None,
        confirmed="confirmed" in (stream.get("flags") or []),
        ssrc=ssrc if isinstance(ssrc := stream.get("SSRC"), int) else None,
    )


def _quality(value: Any) -> LegQuality | None:
    if not isinstance(value, dict) or "ssrc" not in value:
        return None

    def optional(key: str, scale: float) -> float | None:
        raw = value.get(key)
        return raw / scale if isinstance(raw, int) else None

    return LegQuality(
        ssrc=_int(value.get("ssrc")),
        packets_received=_int(value.get("packets received")),
        packets_expected=_int(value.get("packets expected")),
        packets_lost=_int(value.get("packets lost")),
        jitter_ms=_int(value.get("jitter us")) / 1000,
        average_jitter_ms=_int(value.get("average jitter us")) / 1000,
        interval_loss=_int(value.get("interval loss ppm")) / 1_000_000,
        mos=_int(value.get("MOS x100")) / 100,
        rtt_ms=optional("round-trip time us", 1000),
        average_rtt_ms=optional("average round-trip time us", 1000),
        remote_jitter_ms=optional("remote jitter us", 1000),
        remote_loss=optional("remote loss ppm", 1_000_000),
    )


def call_status_stats(leg: LegInfo) -> dict[str, float | int | str]:
    """The `stats` object of lwork's call-status reply (CONTRACT §6.1) for one leg.

    Upstream figures are what the relay receives from this party; `down_*` are what the party
    reported (RTCP RR) about the stream the relay sends it. Empty until media has flowed, and
    always empty from a relay that measures nothing (rtpengine).
    """
    quality = leg.quality
    if quality is None or quality.packets_received == 0:
        return {}
    endpoint = leg.rtp.endpoint if leg.rtp is not None else None
    return {
        "ip": endpoint[0] if endpoint else "",
        "pr": quality.packets_received,
        "pl": max(0, quality.packets_lost),
        "avgIJ": round(quality.average_jitter_ms, 3),
        "jitter": round(quality.jitter_ms, 3),
        "avgrttms": round(quality.average_rtt_ms or 0.0, 3),
        "rttms": round(quality.rtt_ms or 0.0, 3),
        "lostrate": round(quality.interval_loss, 4),
        "down_jitter": round(quality.remote_jitter_ms or 0.0, 3),
        "down_lostrate": round(quality.remote_loss or 0.0, 4),
        "mos": round(quality.mos, 2),
        "total_eval": rating(quality.mos),
    }
