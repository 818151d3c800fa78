"""RFC 4733 telephone-events: the payload format, a generator for one digit, and its timing
toward a leg (queued digits wait their turn).

A generated event is a burst of RTP packets sharing one RTP timestamp (the event start): the
first carries the marker bit, the duration field grows by one packet time per packet, and the
final state is sent three times, one packet time apart, with the E bit (§2.5.1.4), each with a
new sequence number.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.session import Leg

EVENT_CODES = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}
END_REPEATS = 3
_EVENT = struct.Struct("!BBH")


def digit_code(digit: str | int) -> int:
    """Map '0'-'9', '*', '#', 'A'-'D' or an int 0-15 to the event code; else ValueError."""
    if isinstance(digit, int):
        if 0 <= digit <= 15:
            return digit
        raise ValueError(f"DTMF: event code {digit} out of range")
    code = EVENT_CODES.get(digit.upper())
    if code is None:
        raise ValueError(f"DTMF: {digit!r} is not a DTMF digit")
    return code


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-octet telephone-event payload."""

    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        if len(data) < 4:
            raise ValueError("telephone-event: payload shorter than 4 octets")
        event, flags, duration = _EVENT.unpack_from(data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        if not (0 <= self.event <= 255 and 0 <= self.volume <= 63 and 0 <= self.duration <= 0xFFFF):
            raise ValueError("telephone-event: field out of range")
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)


@dataclass(frozen=True, slots=True)
class ScheduledPacket:
    """A packet and its send time relative to the start of the event, in seconds."""

    offset: float
    data: bytes


def generate_event(
    code: int,
    *,
    ssrc: int,
    first_sequence: int,
    timestamp: int,
    payload_type: int = 101,
    duration_ms: int = 250,
    volume: int = 8,
    clock_rate: int = 8000,
    ptime_ms: int = 20,
) -> list[ScheduledPacket]:
    """All packets for one event, ready to send at their offsets."""
    if not 0 <= code <= 15:
        raise ValueError("DTMF: event code out of range")
    step = clock_rate * ptime_ms // 1000
    total = min(0xFFFF, clock_rate * duration_ms // 1000)
    packets: list[ScheduledPacket] = []
    sequence = first_sequence
    elapsed = step
    while elapsed < total:
        packets.append(
            _packet(
                code,
                False,
                volume,
                elapsed,
                sequence,
                timestamp,
                ssrc,
                payload_type,
                len(packets) == 0,
                (elapsed - step) / clock_rate,
            )
        )
        sequence += 1
        elapsed += step
    end_offset = (total - step) / clock_rate if total > step else 0.0
    for repeat in range(END_REPEATS):
        packets.append(
            _packet(
                code,
                True,
                volume,
                total,
                sequence,
                timestamp,
                ssrc,
                payload_type,
                not packets,
                end_offset + repeat * ptime_ms / 1000,  # retransmissions one packet time apart
            )
        )
        sequence += 1
    return packets


def _packet(
    code: int,
    end: bool,
    volume: int,
    duration: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload_type: int,
    marker: bool,
    offset: float,
) -> ScheduledPacket:
    payload = bytes(TelephoneEvent(code, end, volume, duration))
    packet = RtpPacket(
        payload_type=payload_type,
        sequence=sequence & 0xFFFF,
        timestamp=timestamp & 0xFFFF_FFFF,
        ssrc=ssrc,
        payload=payload,
        marker=marker,
    )
    return ScheduledPacket(offset, bytes(packet))


def schedule_digit(
    target: Leg, code: int, duration_ms: int, volume: int, pause_ms: int, now: float
) -> tuple[list[ScheduledPacket], float]:
    """One digit's packets toward `target` and how long to wait before the first: digits
    queued for a leg follow the previous one plus the pause. Advances the leg's event
    sequence, counters and busy time."""
    start = max(now, target.dtmf_busy_until)
    duration_ms = max(100, min(5000, duration_ms))
    packets = generate_event(
        code,
        ssrc=target.relay_ssrc,
        first_sequence=target.dtmf_sequence,
        timestamp=int(start * target.clock_rate),
        payload_type=min(target.telephone_event_pts),
        duration_ms=duration_ms,
        volume=volume,
        clock_rate=target.clock_rate,
    )
    target.dtmf_sequence = (target.dtmf_sequence + len(packets)) & 0xFFFF
    target.dtmf_packets += len(packets)
    target.dtmf_busy_until = start + duration_ms / 1000 + max(100, pause_ms) / 1000
    return packets, start - now
