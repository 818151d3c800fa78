"""RTCP packets (RFC 3550 §6.4-6.6): SR, RR, SDES, BYE; others kept opaque.

`parse_compound` walks a compound datagram and checks every length word against the bytes
actually present, so a packet that lies about its length is a ValueError, never an over-read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SR = 200
RR = 201
SDES = 202
BYE = 203

_HEADER = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IIIIII")
_SENDER_INFO = struct.Struct("!IIIII")
NTP_EPOCH_OFFSET = 2_208_988_800
"""Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix epoch)."""


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP timestamp for a Unix time."""
    return int(round((seconds + NTP_EPOCH_OFFSET) * (1 << 32))) & 0xFFFF_FFFF_FFFF_FFFF


def ntp_middle32(ntp: int) -> int:
    """The compact form (middle 32 bits) used by LSR and DLSR."""
    return (ntp >> 16) & 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception report about one source (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    """Signed 24-bit; negative when duplicates outnumber losses."""
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> ReportBlock:
        if len(data) < offset + 24:
            raise ValueError("RTCP: report block truncated")
        ssrc, lost_word, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        cumulative = lost_word & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        return cls(ssrc, lost_word >> 24, cumulative, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        if not 0 <= self.fraction_lost <= 255:
            raise ValueError("RTCP: fraction lost out of range")
        cumulative = max(-(1 << 23), min((1 << 23) - 1, self.cumulative_lost)) & 0xFFFFFF
        return _BLOCK.pack(
            self.ssrc,
            (self.fraction_lost << 24) | cumulative,
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR: sender info plus reception reports."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + _SENDER_INFO.pack(
            self.ntp_timestamp >> 32,
            self.ntp_timestamp & 0xFFFF_FFFF,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
        )
        return _pack(SR, len(self.reports), body + b"".join(bytes(r) for r in self.reports))


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR: reception reports from a participant that is not sending."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(bytes(r) for r in self.reports)
        return _pack(RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES with chunks of (ssrc, ((item type, value), ...))."""

    chunks: tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...]

    def __bytes__(self) -> bytes:
        body = b""
        for ssrc, items in self.chunks:
            chunk = struct.pack("!I", ssrc)
            for kind, value in items:
                if not 1 <= kind <= 255 or len(value) > 255:
                    raise ValueError("RTCP: bad SDES item")
                chunk += bytes([kind, len(value)]) + value
            chunk += b"\x00" * (4 - len(chunk) % 4)
            body += chunk
        return _pack(SDES, len(self.chunks), body)


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE from one or more sources with an optional reason."""

    sources: tuple[int, ...]
    reason: bytes = b""

    def __bytes__(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.sources)
        if self.reason:
            if len(self.reason) > 255:
                raise ValueError("RTCP: BYE reason too long")
            extra = bytes([len(self.reason)]) + self.reason
            body += extra + b"\x00" * (-len(extra) % 4)
        return _pack(BYE, len(self.sources), body)


@dataclass(frozen=True, slots=True)
class OtherRtcp:
    """A packet type this relay does not interpret (APP, XR, feedback), kept verbatim."""

    packet_type: int
    count: int
    body: bytes

    def __bytes__(self) -> bytes:
        return _pack(self.packet_type, self.count, self.body)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | OtherRtcp


def _pack(packet_type: int, count: int, body: bytes) -> bytes:
    if count > 31 or len(body) % 4:
        raise ValueError("RTCP: count or body length out of range")
    return _HEADER.pack(0x80 | count, packet_type, len(body) // 4) + body


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse every packet in a compound RTCP datagram."""
    if len(data) < 4:
        raise ValueError("RTCP: shorter than a header")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise ValueError("RTCP: trailing bytes")
        first, packet_type, words = _HEADER.unpack_from(data, pos)
        if first >> 6 != 2:
            raise ValueError("RTCP: version is not 2")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise ValueError("RTCP: length field exceeds datagram")
        body = data[pos + 4 : end]
        if first & 0x20:
            if not body or body[-1] == 0 or body[-1] > len(body):
                raise ValueError("RTCP: bad padding")
            body = body[: -body[-1]]
        packets.append(_parse_one(packet_type, first & 0x1F, bytes(body)))
        pos = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == SR:
        if len(body) < 24 + 24 * count:
            raise ValueError("RTCP: SR truncated")
        ssrc = struct.unpack_from("!I", body)[0]
        msw, lsw, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body, 4)
        reports = tuple(ReportBlock.parse(body, 24 + 24 * i) for i in range(count))
        return SenderReport(ssrc, (msw << 32) | lsw, rtp_ts, packets, octets, reports)
    if packet_type == RR:
        if len(body) < 4 + 24 * count:
            raise ValueError("RTCP: RR truncated")
        ssrc = struct.unpack_from("!I", body)[0]
        reports = tuple(ReportBlock.parse(body, 4 + 24 * i) for i in range(count))
        return ReceiverReport(ssrc, reports)
    if packet_type == SDES:
        return SourceDescription(_parse_sdes_chunks(body, count))
    if packet_type == BYE:
        if len(body) < 4 * count:
            raise ValueError("RTCP: BYE truncated")
        sources = struct.unpack_from(f"!{count}I", body)
        reason = b""
        rest = body[4 * count :]
        if rest:
            if rest[0] + 1 > len(rest):
                raise ValueError("RTCP: BYE reason truncated")
            reason = rest[1 : 1 + rest[0]]
        return Bye(tuple(sources), reason)
    if not 192 <= packet_type <= 223:
        raise ValueError(f"RTCP: packet type {packet_type} outside the RTCP range")
    return OtherRtcp(packet_type, count, body)


def _parse_sdes_chunks(
    body: bytes, count: int
) -> tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...]:
    chunks = []
    pos = 0
    for _ in range(count):
        if len(body) < pos + 4:
            raise ValueError("RTCP: SDES chunk truncated")
        ssrc = struct.unpack_from("!I", body, pos)[0]
        pos += 4
        items: list[tuple[int, bytes]] = []
        while True:
            if pos >= len(body):
                raise ValueError("RTCP: SDES item list unterminated")
            kind = body[pos]
            if kind == 0:
                pos = (pos + 4) & ~3  # the null item plus padding to the next word
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise ValueError("RTCP: SDES item truncated")
            length = body[pos + 1]
            items.append((kind, body[pos + 2 : pos + 2 + length]))
            pos += 2 + length
        chunks.append((ssrc, tuple(items)))
    return tuple(chunks)
