"""The original apps' "redundant" datagrams: 2 or 3 RTP packets behind 1-byte length prefixes
(CONTRACT §6.4, original-behavior.md §8). Pure: bytes in, packets out.

Two forms, recognised only when the sizes add up exactly and an RTP header starts right after
the prefixes (the original gateway's rules):

* three packets: a count byte (top 3 bits = 3), `Len1 Len2 Len3`, then the packets;
* two packets: `Len1 Len2`, then the packets.

Packet 1 is the newest; the others repeat earlier ones. Every packed packet must itself look
like RTP (version 2, an audio payload type): a datagram that only looks packed (the sizes add up
by chance) is then not taken apart into garbage.
"""

from __future__ import annotations

from typing import Final

RTP_MIN: Final = 12
STATIC_AUDIO_PTS: Final = frozenset({0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18})
"""RFC 3551's audio payload types; 96-127 (dynamic: AMR is 102 toward the app) are audio too."""
WINDOW: Final = 64
"""Sequence numbers the duplicate filter remembers behind the newest one: a packed datagram
repeats at most the two packets before its newest."""
_SEQ_MOD: Final = 1 << 16
_HALF: Final = 1 << 15


def _is_audio_rtp(data: bytes, at: int, length: int) -> bool:
    if length < RTP_MIN:
        return False
    first = data[at]
    if first & 0xC0 != 0x80 or length < RTP_MIN + 4 * (first & 0x0F):
        return False
    pt = data[at + 1] & 0x7F
    return pt >= 96 or pt in STATIC_AUDIO_PTS


def unpack(data: bytes) -> list[bytes] | None:
    """The packets of a packed datagram, newest first as sent; None when `data` is not one.

    The three-packet form is tried first: its count byte cannot be mistaken for a length that
    adds up, since 4 + Len1 + Len2 + Len3 already fixes the size.
    """
    size = len(data)
    if size >= 4 + 3 * RTP_MIN and data[0] >> 5 == 3:
        len1, len2, len3 = data[1], data[2], data[3]
        if size == 4 + len1 + len2 + len3:
            packets = _split(data, 4, (len1, len2, len3))
            if packets is not None:
                return packets
    if size >= 2 + 2 * RTP_MIN:
        len1, len2 = data[0], data[1]
        if size == 2 + len1 + len2:
            return _split(data, 2, (len1, len2))
    return None


def _split(data: bytes, at: int, lengths: tuple[int, ...]) -> list[bytes] | None:
    packets = []
    for length in lengths:
        if not _is_audio_rtp(data, at, length):
            return None
        packets.append(data[at : at + length])
        at += length
    return packets


class SeenWindow:
    """Which sequence numbers of a leg's stream were already relayed: the newest one and a
    bitmap of the WINDOW before it (as an SRTP replay window). A new SSRC starts afresh."""

    __slots__ = ("ssrc", "newest", "mask")

    def __init__(self) -> None:
        self.ssrc = -1
        self.newest = 0
        self.mask = 0
        """Bit i set: sequence `newest - i` was seen (bit 0 is `newest` itself)."""

    def seed(self, ssrc: int, newest: int) -> None:
        """Take everything up to `newest` of `ssrc` as seen: the single packets relayed before
        the leg's first packed datagram, which was when the window began."""
        self.ssrc, self.newest, self.mask = ssrc, newest, (1 << WINDOW) - 1

    def first_time(self, ssrc: int, sequence: int) -> bool:
        """Record `sequence`; False when it was seen already (or is too old to tell)."""
        if ssrc != self.ssrc:
            self.ssrc, self.newest, self.mask = ssrc, sequence, 1
            return True
        ahead = (sequence - self.newest) % _SEQ_MOD
        if ahead == 0:
            return False
        if ahead < _HALF:  # newer: slide the window forward
            self.mask = ((self.mask << ahead) | 1) & ((1 << WINDOW) - 1)
            self.newest = sequence
            return True
        behind = _SEQ_MOD - ahead
        if behind >= WINDOW:  # far behind: the sender restarted its sequence, follow it
            self.newest, self.mask = sequence, 1
            return True
        bit = 1 << behind
        if self.mask & bit:
            return False
        self.mask |= bit
        return True
