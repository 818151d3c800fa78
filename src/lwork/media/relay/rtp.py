"""RTP fixed header and payload (RFC 3550 §5.1) as a parse/serialise dataclass.

The relay's hot path does not build these objects: it reads the few header fields it needs with
`peek_header`, which validates exactly as much as `RtpPacket.parse` does for those fields.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER_SIZE = 12
_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet; `extension` is (profile, data) when the X bit is set."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    padding: int = 0
    """Number of padding octets including the final count octet (0 = no P bit)."""

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < HEADER_SIZE:
            raise ValueError("RTP: shorter than the fixed header")
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise ValueError("RTP: version is not 2")
        pos = HEADER_SIZE
        cc = first & 0x0F
        if len(data) < pos + 4 * cc:
            raise ValueError("RTP: CSRC list truncated")
        csrc = struct.unpack_from(f"!{cc}I", data, pos)
        pos += 4 * cc
        extension = None
        if first & 0x10:
            if len(data) < pos + 4:
                raise ValueError("RTP: extension header truncated")
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if len(data) < pos + 4 * words:
                raise ValueError("RTP: extension truncated")
            extension = (profile, bytes(data[pos : pos + 4 * words]))
            pos += 4 * words
        end = len(data)
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or end - padding < pos:
                raise ValueError("RTP: bad padding length")
            end -= padding
        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrc=tuple(csrc),
            extension=extension,
            padding=padding,
        )

    def __bytes__(self) -> bytes:
        if not 0 <= self.payload_type < 128 or len(self.csrc) > 15:
            raise ValueError("RTP: field out of range")
        first = (
            (RTP_VERSION << 6)
            | (0x20 if self.padding else 0)
            | (0x10 if self.extension is not None else 0)
            | len(self.csrc)
        )
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [_HEADER.pack(first, second, self.sequence, self.timestamp, self.ssrc)]
        parts.extend(struct.pack("!I", c) for c in self.csrc)
        if self.extension is not None:
            profile, ext = self.extension
            if len(ext) % 4:
                raise ValueError("RTP: extension length must be a multiple of 4")
            parts.append(struct.pack("!HH", profile, len(ext) // 4) + ext)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def peek_header(data: bytes) -> tuple[int, int, int, int]:
    """Return (payload_type, sequence, timestamp, ssrc) or raise ValueError; no allocation."""
    if len(data) < HEADER_SIZE or data[0] >> 6 != RTP_VERSION:
        raise ValueError("RTP: not an RTP packet")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if len(data) < HEADER_SIZE + 4 * (first & 0x0F):
        raise ValueError("RTP: CSRC list truncated")
    return second & 0x7F, sequence, timestamp, ssrc


def looks_like_rtcp(data: bytes) -> bool:
    """RFC 5761 §4 demultiplexing: RTCP packet types 192-223 occupy the RTP PT+M byte."""
    return len(data) >= 2 and 192 <= data[1] <= 223
