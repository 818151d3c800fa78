"""NMSI frames: bytes in, frames out; acks out as bytes. No I/O.

The header, big endian: magic ``0xAA55AA55`` (4), type (1: 1 command, 2 ack, 3 heartbeat),
total length including the header (4), version (4, = 1), EID (8), TID (4), ack code (4),
FUP (1), CPID (2), reserved. The reference calls the header 39 bytes while its named fields
take 32, so the reserved tail is the 7 bytes that make 39. A heartbeat is the magic and the
type byte alone (5 bytes).
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass

MAGIC = 0xAA55AA55
COMMAND, ACK, HEARTBEAT = 1, 2, 3
VERSION = 1
HEADER = struct.Struct(">IBIIQIIBH7s")
HEADER_SIZE = HEADER.size  # 39
_MAGIC_BYTES = MAGIC.to_bytes(4, "big")

# RETN codes of the original for frames it could not take.
UNPARSABLE, WRONG_VERSION, WRONG_TYPE, WRONG_MAGIC = 90020, 90021, 90023, 90024


@dataclass(frozen=True, slots=True)
class Header:
    type: int
    length: int
    version: int
    eid: int
    tid: int
    ack_code: int
    fup: int
    cpid: int


@dataclass(frozen=True, slots=True)
class CommandFrame:
    header: Header
    text: bytes


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame refused with ``retn``; ``fatal``: the byte stream cannot be followed further
    (wrong magic, impossible length), so the connection is to be closed after the ack."""

    retn: int
    header: Header | None
    fatal: bool


Event = CommandFrame | Heartbeat | BadFrame


class FrameDecoder:
    """Feed it received bytes; it returns the frames they complete. After a fatal BadFrame it
    returns nothing more."""

    def __init__(self, max_frame: int = 64 * 1024) -> None:
        self._max_frame = max_frame
        self._buffer = bytearray()
        self._broken = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Event]:
        if self._broken:
            return []
        self._buffer += data
        events: list[Event] = []
        while not self._broken:
            event = self._next()
            if event is None:
                break
            events.append(event)
        return events

    def _next(self) -> Event | None:
        buffer = self._buffer
        while True:
            prefix = bytes(buffer[:4])
            if not _MAGIC_BYTES.startswith(prefix):
                return self._fatal(WRONG_MAGIC, None)
            if len(buffer) < 5:
                return None
            if buffer[4] == HEARTBEAT:
                del buffer[:5]
                return Heartbeat()
            if len(buffer) < HEADER_SIZE:
                return None
            header = Header(*HEADER.unpack_from(buffer)[1:9])
            if header.length < HEADER_SIZE or header.length > self._max_frame:
                return self._fatal(UNPARSABLE, header)
            if len(buffer) < header.length:
                return None
            text = bytes(buffer[HEADER_SIZE : header.length])
            del buffer[: header.length]
            if header.version != VERSION:
                return BadFrame(WRONG_VERSION, header, fatal=False)
            if header.type == ACK:
                continue  # the peer acknowledging: answering it could start an ack ping-pong
            if header.type != COMMAND:
                return BadFrame(WRONG_TYPE, header, fatal=False)
            return CommandFrame(header, text)

    def _fatal(self, retn: int, header: Header | None) -> BadFrame:
        self._broken = True
        self._buffer.clear()
        return BadFrame(retn, header, fatal=True)


def encode_frame(
    type_: int, body: bytes, eid: int = 0, tid: int = 0, ack_code: int = 0, fup: int = 0,
    cpid: int = 1,
) -> bytes:  # fmt: skip
    header = HEADER.pack(MAGIC, type_, HEADER_SIZE + len(body), VERSION, eid, tid,
                         ack_code, fup, cpid, bytes(7))  # fmt: skip
    return header + body


def ack_text(command: str, retn: int, desc: str | None, now: float) -> str:
    """``<YYYY-MM-DD HH:MM:SS> : <CMD> : RETN=<code>[,DESC=<text>]`` (UTC)."""
    when = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    tail = f"RETN={retn}" if desc is None else f"RETN={retn},DESC={desc}"
    return f"{when} : {command} : {tail}"


def encode_ack(
    command: str, retn: int, desc: str | None, now: float, eid: int = 0, tid: int = 0
) -> bytes:
    """An ack echoing the request's EID and TID, the RETN also in the ack code field."""
    body = ack_text(command, retn, desc, now).encode("utf-8", "replace")
    return encode_frame(ACK, body, eid=eid, tid=tid, ack_code=retn & 0xFFFFFFFF)
