"""lwork's own ng command `lwork stats`: the statistics of many calls in one request.

A call status shows a few figures per leg, but a `query` reply is ~2.5 KB of nested bencode per
call, and decoding it in Python (about half a microsecond a token, 700 tokens) costs the API node
more than answering the status poll. `lwork stats` carries `call-ids` (at most
`MAX_COMPACT_CALLS`); its reply maps each call-id the relay knows to its legs by tag, each leg one
ASCII string of space-separated fields in `COMPACT_LEG_FIELDS` order (seven bencode tokens a
call, and the numbers parsed by `int` in C), and gives the relay's media address once as
`local address`. The reply carries the field list, so a relay of another version is noticed
instead of misread. Both sides are here so that the layout is defined
once: `compact_leg` for the built-in relay, `parse_compact_stats` for the client. rtpengine has
no such command; the client falls back to `query` there. A `delete` asks for the same layout
with `COMPACT_REPLY_KEY`, so ending a call costs the API node no full reply either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lwork.media.ng.results import CallStats, LegInfo, LegQuality, StreamInfo
from lwork.media.relay.leg_reports import leg_quality

if TYPE_CHECKING:  # the API node imports this module for the parser, not the relay
    from lwork.media.relay.session import Leg

COMPACT_LEG_FIELDS = (
    "address",
    "port",
    "rtp packets",
    "local port",
    # from here on only once the relay measured media from the leg; -1: not measured yet
    "ssrc",
    "packets received",
    "packets expected",
    "packets lost",
    "jitter us",
    "average jitter us",
    "interval loss ppm",
    "MOS x100",
    "round-trip time us",
    "average round-trip time us",
    "remote jitter us",
    "remote loss ppm",
)
"""One leg of a `lwork stats` reply (units as in `query`'s `quality`): the RTP endpoint (``-``
and 0 while unknown), counters, then quality."""
_FIELDS = [field.encode() for field in COMPACT_LEG_FIELDS]
_ADDRESSING = 4
_MAX_LEG_TEXT = 400
MAX_COMPACT_CALLS = 100
"""Calls per `lwork stats` request: the reply (~200 bytes a call) must fit one datagram."""
COMPACT_REPLY_KEY = "lwork reply"
"""A `delete` carrying this key with the value ``compact`` is answered in the layout of
`lwork stats` (the one call it ended) by the built-in relay; rtpengine ignores the key."""


def compact_leg(leg: Leg) -> str:
    """One leg in `COMPACT_LEG_FIELDS` order; the quality part only once media was measured."""
    address = leg.rtp_destination()
    fields = [address[0] if address else "-", address[1] if address else 0, leg.rtp.packets,
              leg.rtp_port]  # fmt: skip
    quality = leg_quality(leg)
    if quality is not None:
        fields += [
            quality.ssrc,
            quality.packets_received,
            quality.packets_expected,
            quality.packets_lost,
            round(quality.jitter_ms * 1000),
            round(quality.average_jitter_ms * 1000),
            round(quality.interval_loss * 1_000_000),
            round(quality.mos * 100),
            _scaled(quality.rtt_ms, 1000),
            _scaled(quality.average_rtt_ms, 1000),
            _scaled(quality.remote_jitter_ms, 1000),
            _scaled(quality.remote_loss, 1_000_000),
        ]
    return " ".join(map(str, fields))


def _scaled(value: float | None, scale: int) -> int:
    return -1 if value is None else round(value * scale)


def parse_compact_stats(reply: dict[bytes, Any]) -> dict[str, CallStats]:
    """Type a `lwork stats` reply (decoded bencode, byte strings): per call-id its legs' RTP
    endpoint, relay port, packet count and quality, what a call status shows. The other
    `CallStats` fields are zero; calls the relay does not know are absent. ValueError if the
    reply is not in the expected shape."""
    if reply.get(b"fields") != _FIELDS:
        raise ValueError("compact stats in an unknown layout")
    calls = reply.get(b"calls")
    local = reply.get(b"local address")
    if not isinstance(calls, dict) or not isinstance(local, bytes):
        raise ValueError("compact stats without calls or local address")
    local_address = local.decode("ascii")
    found: dict[str, CallStats] = {}
    for call_id, compact_legs in calls.items():
        if not isinstance(compact_legs, dict):
            raise ValueError(f"compact stats of {call_id!r} are not a dictionary")
        tags = [tag.decode("utf-8", "surrogateescape") for tag in compact_legs]
        # The built-in relay's calls have two legs, each in dialogue with the other.
        peers = tags[::-1] if len(tags) == 2 else [""] * len(tags)
        legs = {
            tag: _leg(tag, peer, text, local_address)
            for tag, peer, text in zip(tags, peers, compact_legs.values(), strict=True)
        }
        found[call_id.decode("utf-8", "surrogateescape")] = CallStats(
            created=0,
            last_signal=0,
            legs=legs,
            rtp_packets=sum(leg.rtp.packets for leg in legs.values() if leg.rtp is not None),
            rtp_bytes=0,
            rtp_errors=0,
            rtcp_packets=0,
            ssrcs={},
        )
    return found


def _leg(tag: str, peer: str, text: Any, local_address: str) -> LegInfo:
    if not isinstance(text, bytes) or len(text) > _MAX_LEG_TEXT:
        raise ValueError(f"compact leg {tag!r} is not a short string")
    address, *rest = text.split(b" ")
    numbers = [int(n) for n in rest]  # ValueError for anything but integers
    if len(numbers) not in (_ADDRESSING - 1, len(COMPACT_LEG_FIELDS) - 1):
        raise ValueError(f"compact leg {tag!r} has {len(numbers) + 1} fields")
    port, packets, local_port = numbers[:3]
    rtp = StreamInfo(
        local_port=local_port,
        local_address=local_address,
        endpoint=None if address == b"-" else (address.decode("ascii"), port),
        advertised=None,
        packets=packets,
        bytes=0,
        errors=0,
        last_packet=None,
        confirmed=False,
    )
    quality = None
    if len(numbers) > 3:
        ssrc, received, expected, lost, jitter, avg_jitter, loss, mos, rtt, avg_rtt, rj, rl = (
            numbers[3:]
        )
        quality = LegQuality(
            ssrc=ssrc,
            packets_received=received,
            packets_expected=expected,
            packets_lost=lost,
            jitter_ms=jitter / 1000,
            average_jitter_ms=avg_jitter / 1000,
            interval_loss=loss / 1_000_000,
            mos=mos / 100,
            rtt_ms=_unless_negative(rtt, 1000),
            average_rtt_ms=_unless_negative(avg_rtt, 1000),
            remote_jitter_ms=_unless_negative(rj, 1000),
            remote_loss=_unless_negative(rl, 1_000_000),
        )
    return LegInfo(tag=tag, in_dialogue_with=peer, rtp=rtp, rtcp=None, quality=quality)


def _unless_negative(value: int, scale: int) -> float | None:
    return None if value < 0 else value / scale
