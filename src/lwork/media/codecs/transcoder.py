"""One call's transcoding between the app's AMR-NB and the carrier's G.711, as two pure
directions: RTP packets in, RTP packets out. Sans-IO: the caller owns the sockets, the clock
and the randomness (each side's SSRC, first sequence number and timestamp).

Each side keeps its own RTP numbering (RFC 3550 §7.2: a translator that changes the payload is
a new source): our SSRC, a sequence number per packet we send, and timestamps that follow the
input's (both clocks are 8 kHz) from a random start. RFC 4733 events pass through with the
other side's payload type. A packet of a payload type the leg did not agree is dropped and
counted; so is a late or repeated one (the codec's state cannot go back in time).

App -> carrier: each AMR frame is decoded and re-encoded as G.711 in one packet per input
packet. Packets missing before one that arrives (up to MAX_CONCEALED) are filled with the
decoder's concealment, timestamped where they belonged, so the carrier's jitter buffer can
still play them; a bad AMR payload is concealed the same way.

Carrier -> app: G.711 of any packet length (10, 20, 30 ms) is gathered into 20 ms and each
20 ms becomes one AMR packet (what the apps expect). A gap in the carrier's timestamps drops
the partial 20 ms gathered before it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from lwork.media.codecs import amr_payload, amrnb, g711

SAMPLES: Final = 160
_HEADER: Final = struct.Struct("!BBHII")
_SEQ_MOD: Final = 1 << 16
_TS_MOD: Final = 1 << 32
MAX_CONCEALED: Final = 5
"""Lost packets (20 ms each) filled in before a packet that arrives; a longer gap is silence
the carrier's own concealment covers."""
G711_CODECS: Final = {
    "PCMA": (g711.alaw_encode, g711.alaw_decode),
    "PCMU": (g711.mulaw_encode, g711.mulaw_decode),
}


@dataclass(slots=True)
class Counters:
    packets_in: int = 0
    packets_out: int = 0
    events: int = 0
    wrong_type: int = 0
    """Packets of a payload type the leg did not agree (not the codec, not telephone-event)."""
    malformed: int = 0
    """Packets that are not RTP, or whose payload does not parse (AMR concealed)."""
    late: int = 0
    """Packets at or behind the newest sequence number seen."""
    concealed: int = 0
    """Frames made by the decoder's concealment."""
    dropped_samples: int = 0
    format_switches: int = 0
    """Times the app's AMR payload format turned out to be the other one than its SDP said."""


class Numbering:
    """Our side of the RTP numbering toward one party."""

    __slots__ = ("ssrc", "sequence", "ts_base", "in_base")

    def __init__(self, ssrc: int, first_sequence: int, first_timestamp: int) -> None:
        self.ssrc = ssrc & 0xFFFFFFFF
        self.sequence = first_sequence % _SEQ_MOD
        self.ts_base = first_timestamp % _TS_MOD
        self.in_base: int | None = None

    def timestamp(self, input_timestamp: int) -> int:
        if self.in_base is None:
            self.in_base = input_timestamp
        return (self.ts_base + input_timestamp - self.in_base) % _TS_MOD

    def packet(self, payload_type: int, timestamp: int, payload: bytes, marker: bool) -> bytes:
        header = _HEADER.pack(
            0x80, (0x80 if marker else 0) | payload_type, self.sequence, timestamp, self.ssrc
        )
        self.sequence = (self.sequence + 1) % _SEQ_MOD
        return header + payload


def _parse(packet: bytes) -> tuple[bool, int, int, int, bytes] | None:
    """(marker, payload type, sequence, timestamp, payload) of a plain RTP packet, or None."""
    if len(packet) < 12:
        return None
    first, second, sequence, timestamp, _ssrc = _HEADER.unpack_from(packet)
    if first == 0x80:  # version 2 and nothing else: nearly every packet, decided in one compare
        return bool(second & 0x80), second & 0x7F, sequence, timestamp, packet[12:]
    if first >> 6 != 2:
        return None
    at = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        if len(packet) < at + 4:
            return None
        at += 4 + 4 * struct.unpack_from("!H", packet, at + 2)[0]
    end = len(packet)
    if first & 0x20:
        end -= packet[-1]
    if at > end:
        return None
    return bool(second & 0x80), second & 0x7F, sequence, timestamp, packet[at:end]


class _Direction:
    def __init__(self, out: Numbering, event_in: int | None, event_out: int | None) -> None:
        self.out = out
        self.event_in, self.event_out = event_in, event_out
        self.counters = Counters()
        self.newest: int | None = None

    def _admit(self, packet: bytes, codec_pt: int) -> tuple[bool, int, int, int, bytes] | None:
        counters = self.counters
        counters.packets_in += 1
        parsed = _parse(packet)
        if parsed is None:
            counters.malformed += 1
            return None
        payload_type, sequence = parsed[1], parsed[2]
        if payload_type != codec_pt and payload_type != self.event_in:
            counters.wrong_type += 1
            return None
        if (
            self.newest is not None
            and (sequence - self.newest) % _SEQ_MOD >= _SEQ_MOD // 2
            or (sequence == self.newest)
        ):
            counters.late += 1
            return None
        return parsed

    def _event(self, parsed: tuple[bool, int, int, int, bytes]) -> list[bytes]:
        marker, _pt, sequence, timestamp, payload = parsed
        self.newest = sequence
        if self.event_out is None:
            return []
        self.counters.events += 1
        self.counters.packets_out += 1
        return [self.out.packet(self.event_out, self.out.timestamp(timestamp), payload, marker)]


class AppToCarrier(_Direction):
    """AMR RTP from the app -> G.711 RTP toward the carrier."""

    def __init__(
        self, out: Numbering, *, amr_pt: int, octet_aligned: bool, g711_codec: str,
        g711_pt: int, event_in: int | None = None, event_out: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(out, event_in, event_out)
        self.amr_pt, self.octet_aligned, self.g711_pt = amr_pt, octet_aligned, g711_pt
        self.encode = G711_CODECS[g711_codec][0]
        self.decoder = amrnb.Decoder()

    def receive(self, packet: bytes) -> list[bytes]:
        parsed = self._admit(packet, self.amr_pt)
        if parsed is None:
            return []
        marker, payload_type, sequence, timestamp, payload = parsed
        if payload_type != self.amr_pt:
            return self._event(parsed)
        counters, out = self.counters, []
        missing = 0 if self.newest is None else (sequence - self.newest - 1) % _SEQ_MOD
        self.newest = sequence
        if 0 < missing <= MAX_CONCEALED:
            for back in range(missing, 0, -1):
                pcm = self.decoder.decode(None)
                counters.concealed += 1
                out.append(self._send(timestamp - back * SAMPLES, pcm, False))
        frame = amr_payload.one_frame(payload, self.octet_aligned)
        if frame is not None:  # a 20 ms packet in the format the app uses: nearly all of them
            out.append(self._send(timestamp, self.decoder.decode(frame), marker))
            return out
        try:
            frames = self._frames(payload)
        except ValueError:
            counters.malformed += 1
            frames = [b""]  # one 20 ms frame, concealed
        pcm = b"".join(self.decoder.decode(frame or None) for frame in frames)
        counters.concealed += sum(1 for frame in frames if not frame)
        out.append(self._send(timestamp, pcm, marker))
        return out

    def _frames(self, payload: bytes) -> list[bytes]:
        """The payload's frames in the app's payload format: the SDP's, unless the payload
        has the exact size of the other format and not of the SDP's (an app that says one and
        sends the other), which then holds for the rest of the call (`format_switches`)."""
        said = self.octet_aligned
        frames: list[bytes] | None = None
        try:
            frames = amr_payload.parse(payload, said)[1]
            if amr_payload.payload_size(frames, said) == len(payload):
                return frames
        except ValueError:
            pass
        try:
            other = amr_payload.parse(payload, not said)[1]
            exact = amr_payload.payload_size(other, not said) == len(payload)
        except ValueError:
            exact = False
        if not exact:
            if frames is None:
                raise ValueError("AMR: the payload is in neither format")
            return frames  # padded or odd, but it parsed: the SDP's format
        self.octet_aligned = not self.octet_aligned
        self.counters.format_switches += 1
        return other

    def _send(self, timestamp: int, pcm: bytes, marker: bool) -> bytes:
        self.counters.packets_out += 1
        return self.out.packet(
            self.g711_pt, self.out.timestamp(timestamp % _TS_MOD), self.encode(pcm), marker
        )


class CarrierToApp(_Direction):
    """G.711 RTP from the carrier -> AMR RTP (one 20 ms frame a packet) toward the app."""

    def __init__(
        self, out: Numbering, *, g711_codec: str, g711_pt: int, amr_pt: int,
        octet_aligned: bool, mode: int = amrnb.MODE_12_2, event_in: int | None = None,
        event_out: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(out, event_in, event_out)
        self.g711_pt, self.amr_pt, self.octet_aligned = g711_pt, amr_pt, octet_aligned
        self.decode = G711_CODECS[g711_codec][1]
        self.encoder = amrnb.Encoder(mode)
        self.pending = b""
        self.pending_ts = 0
        """The input timestamp of the first sample in `pending`."""

    def receive(self, packet: bytes) -> list[bytes]:
        parsed = self._admit(packet, self.g711_pt)
        if parsed is None:
            return []
        marker, payload_type, sequence, timestamp, payload = parsed
        if payload_type != self.g711_pt:
            return self._event(parsed)
        self.newest = sequence
        continues = (self.pending_ts + len(self.pending) // 2) % _TS_MOD == timestamp
        if self.pending and not continues:
            self.counters.dropped_samples += len(self.pending) // 2
            self.pending = b""
        if not self.pending:
            self.pending_ts = timestamp
        self.pending += self.decode(payload)
        out = []
        while len(self.pending) >= amrnb.PCM_BYTES:
            if len(self.pending) == amrnb.PCM_BYTES:  # a 20 ms packet: no copies
                frame, self.pending = self.encoder.encode(self.pending), b""
            else:
                frame = self.encoder.encode(self.pending[: amrnb.PCM_BYTES])
                self.pending = self.pending[amrnb.PCM_BYTES :]
            body = amr_payload.build([frame], self.octet_aligned)
            ts = self.out.timestamp(self.pending_ts)
            out.append(self.out.packet(self.amr_pt, ts, body, marker))
            marker = False
            self.pending_ts = (self.pending_ts + SAMPLES) % _TS_MOD
            self.counters.packets_out += 1
        return out
