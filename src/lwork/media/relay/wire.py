"""The `query`/`delete` reply body in rtpengine's shape, plus lwork's quality extension.

rtpengine keys are used where they exist (`created`, `last signal`, `tags`, `medias`,
`streams`, `totals`, `SSRC` with `average MOS`). The relay's own RTP-derived measurements,
which rtpengine does not compute, are in each tag's `quality` dictionary, as integers because
bencode has no floats: times in microseconds, fractions in parts per million, MOS x 100.
"""

from __future__ import annotations

from collections.abc import Callable

from lwork.media.ng.bencode import Encodable
from lwork.media.relay.calls import Call
from lwork.media.relay.leg_reports import leg_quality
from lwork.media.relay.session import Address, Counters, Leg


def call_to_query(call: Call, local_address: str, now: float, wall: float) -> dict[str, Encodable]:
    def to_wall(mono: float) -> int:
        return int(wall - (now - mono))

    tags: dict[str, Encodable] = {}
    rtp_total = Counters()
    rtcp_total = Counters()
    ssrc: dict[str, Encodable] = {}
    for leg in call.legs():
        other = leg.other
        main = leg.main_receiver()
        # rtpengine names a leg whose tag is not known yet "<untagged N>"
        tags[leg.tag or "<untagged 1>"] = {
            "tag": leg.tag,
            "created": int(call.created_wall),
            "in dialogue with": other.tag if other else "",
            "subscriptions": [{"tag": other.tag if other else "", "type": "offer/answer"}],
            "subscribers": [{"tag": other.tag if other else "", "type": "offer/answer"}],
            "medias": [
                {
                    "index": 1,
                    "type": "audio",
                    "protocol": "RTP/AVP",
                    "flags": ["initialized", "send", "recv"],
                    "streams": [
                        _stream(
                            local_address,
                            leg.rtp_port,
                            leg.rtp_peer,
                            leg.advertised,
                            leg.rtp,
                            "RTP",
                            to_wall,
                            main.ssrc if main is not None else None,
                        ),
                        _stream(
                            local_address,
                            leg.rtcp_port,
                            leg.rtcp_peer,
                            (leg.advertised[0], leg.advertised[1] + 1) if leg.advertised else None,
                            leg.rtcp,
                            "RTCP",
                            to_wall,
                        ),
                    ],
                }
            ],
            "quality": _quality(leg),
        }
        for counters, total in ((leg.rtp, rtp_total), (leg.rtcp, rtcp_total)):
            total.packets += counters.packets
            total.bytes += counters.bytes
            total.errors += counters.errors
        for receiver in leg.receivers.values():
            ssrc[str(receiver.ssrc)] = {
                "bytes": receiver.bytes,
                "packets": receiver.packets,
                "last RTP timestamp": receiver.last_timestamp,
                "last RTP seq": receiver.extended_max & 0xFFFF_FFFF,
                "cumulative loss": max(0, receiver.lost),
                "tag": leg.tag,
            }
        quality = leg_quality(leg)
        if quality is not None:
            entry = ssrc[str(quality.ssrc)]
            assert isinstance(entry, dict)
            entry["average MOS"] = {
                "MOS": round(quality.mos * 10),
                "round-trip time": round((quality.average_rtt_ms or 0.0) * 1000),
                "jitter": round(quality.average_jitter_ms),
                "packet loss": round(
                    max(0, quality.packets_lost) * 100 / max(1, quality.packets_expected)
                ),
                "samples": 1,
            }
    result: dict[str, Encodable] = {
        "created": int(call.created_wall),
        "created_us": int((call.created_wall % 1) * 1_000_000),
        "last signal": int(call.last_signal_wall),
        "tags": tags,
        "totals": {"RTP": _stats(rtp_total), "RTCP": _stats(rtcp_total)},
        "SSRC": ssrc,
    }
    plan = call.transcoding
    if plan is not None:
        # An lwork key (rtpengine has its own codec reports): what the worker did per direction.
        result["transcoding"] = {
            "app codec": plan.app.encoding,
            "carrier codec": plan.carrier.encoding,
            **{direction: dict(counters) for direction, counters in call.transcoder.items()},
        }
    return result


def _stats(counters: Counters) -> dict[str, Encodable]:
    return {"packets": counters.packets, "bytes": counters.bytes, "errors": counters.errors}


def _endpoint(address: Address) -> dict[str, Encodable]:
    family = "IPv6" if ":" in address[0] else "IPv4"
    return {"family": family, "address": address[0], "port": address[1]}


def _stream(
    local_address: str,
    port: int,
    peer: Address | None,
    advertised: Address | None,
    counters: Counters,
    kind: str,
    to_wall: Callable[[float], int],
    ssrc: int | None = None,
) -> dict[str, Encodable]:
    flags: list[Encodable] = [kind]
    stream: dict[str, Encodable] = {
        "local port": port,
        "local address": local_address,
        "family": "IPv6" if ":" in local_address else "IPv4",
        "stats": _stats(counters),
    }
    if advertised is not None:
        stream["advertised endpoint"] = _endpoint(advertised)
        flags.append("filled")
    if peer is not None:
        stream["endpoint"] = _endpoint(peer)
        flags.append("confirmed")
    elif advertised is not None:
        stream["endpoint"] = _endpoint(advertised)
    if counters.last_packet is not None:
        stream["last packet"] = to_wall(counters.last_packet)
    stream["flags"] = flags
    if ssrc is not None:
        stream["SSRC"] = ssrc
    return stream


def _quality(leg: Leg) -> dict[str, Encodable]:
    quality = leg_quality(leg)
    if quality is None:
        return {}
    result: dict[str, Encodable] = {
        "ssrc": quality.ssrc,
        "packets received": quality.packets_received,
        "packets expected": quality.packets_expected,
        "packets lost": quality.packets_lost,
        "jitter us": round(quality.jitter_ms * 1000),
        "average jitter us": round(quality.average_jitter_ms * 1000),
        "interval loss ppm": round(quality.interval_loss * 1_000_000),
        "MOS x100": round(quality.mos * 100),
        "relatches": leg.relatches,
    }
    if quality.rtt_ms is not None and quality.average_rtt_ms is not None:
        result["round-trip time us"] = round(quality.rtt_ms * 1000)
        result["average round-trip time us"] = round(quality.average_rtt_ms * 1000)
    if quality.remote_jitter_ms is not None and quality.remote_loss is not None:
        result["remote jitter us"] = round(quality.remote_jitter_ms * 1000)
        result["remote loss ppm"] = round(quality.remote_loss * 1_000_000)
    return result
