"""The AMR RTP payload format (RFC 4867 §4), single channel, no interleaving or CRC: both the
octet-aligned and the bandwidth-efficient mode, to and from storage-format frames (`amrnb`).

A storage frame is a ToC byte `0 FT(4) Q 0 0` and the frame's speech bits left-aligned in
whole bytes. In the octet-aligned mode the payload is a CMR byte, the ToC bytes (F set on all
but the last) and the frames' bytes: nearly the storage form already. In the
bandwidth-efficient mode the same fields are packed without padding: CMR 4 bits, ToC entries
6 bits, then each frame's exact number of bits.
"""

from __future__ import annotations

from typing import Final

SPEECH_BITS: Final = (95, 103, 118, 134, 148, 159, 204, 244, 39)
"""Bits of speech (or SID) per frame type 0-8 (3GPP TS 26.101); 15 (no data) has none."""
NO_DATA: Final = 15
NO_CMR: Final = 15
MAX_FRAMES: Final = 16
"""Frames one payload may carry here: a 20 ms packet has one; more is a lie or a flood."""


def _frame_bits(frame_type: int) -> int:
    if frame_type == NO_DATA:
        return 0
    if frame_type < len(SPEECH_BITS):
        return SPEECH_BITS[frame_type]
    raise ValueError(f"AMR: reserved frame type {frame_type}")


def _one_frame_layout(frame_type: int) -> tuple[int, int, int, int] | None:
    """(payload bytes, speech bits, storage speech bytes, left shift) of a bandwidth-efficient
    payload of one frame of this type; None for a reserved type."""
    if frame_type != NO_DATA and frame_type >= len(SPEECH_BITS):
        return None
    bits = _frame_bits(frame_type)
    size = (bits + 7) // 8
    return (10 + bits + 7) // 8, bits, size, 8 * size - bits


_ONE_FRAME: Final = tuple(_one_frame_layout(frame_type) for frame_type in range(16))
"""Per frame type: what `one_frame` and `build` need for the one-frame payload of a 20 ms
packet, worked out once instead of per packet."""


def parse(payload: bytes, octet_aligned: bool) -> tuple[int, list[bytes]]:
    """(CMR, storage frames) of an RTP payload; ValueError when it is malformed."""
    if octet_aligned:
        return _parse_octet(payload)
    return _parse_efficient(payload)


def one_frame(payload: bytes, octet_aligned: bool) -> bytes | None:
    """The storage frame of a payload that is exactly one frame, nothing missing or left over
    (a 20 ms packet, nearly every packet); None for anything else, which `parse` then reads.
    The same frame `parse` gives, without its general walk (a property test compares them)."""
    if len(payload) < 2:
        return None
    first, second = payload[0], payload[1]
    if octet_aligned:
        layout = _ONE_FRAME[(second >> 3) & 0x0F]
        if second & 0x80 or layout is None or len(payload) != 2 + layout[2]:
            return None
        return bytes((second & 0x7C,)) + payload[2:]
    # CMR(4) F(1) FT(4) Q(1), then the speech bits and padding to the byte.
    frame_type = ((first & 0x07) << 1) | (second >> 7)
    layout = _ONE_FRAME[frame_type]
    if first & 0x08 or layout is None or len(payload) != layout[0]:
        return None
    total, bits, size, shift = layout
    toc = (frame_type << 3) | ((second >> 4) & 0x04)
    if not bits:
        return bytes((toc,))
    speech = (int.from_bytes(payload, "big") >> (8 * total - 10 - bits)) & ((1 << bits) - 1)
    return bytes((toc,)) + (speech << shift).to_bytes(size, "big")


def _parse_octet(payload: bytes) -> tuple[int, list[bytes]]:
    if len(payload) < 2:
        raise ValueError("AMR: payload shorter than CMR and one ToC")
    cmr = payload[0] >> 4
    tocs: list[int] = []
    at = 1
    while True:
        if at >= len(payload) or len(tocs) >= MAX_FRAMES:
            raise ValueError("AMR: ToC runs past the payload")
        toc = payload[at]
        at += 1
        tocs.append(toc)
        if not toc & 0x80:
            break
    frames = []
    for toc in tocs:
        size = (_frame_bits((toc >> 3) & 0x0F) + 7) // 8
        if at + size > len(payload):
            raise ValueError("AMR: frame data truncated")
        frames.append(bytes([toc & 0x7C]) + payload[at : at + size])
        at += size
    return cmr, frames


class _Bits:
    __slots__ = ("value", "left")

    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.left = 8 * len(data)

    def take(self, count: int) -> int:
        if count > self.left:
            raise ValueError("AMR: payload truncated")
        self.left -= count
        return (self.value >> self.left) & ((1 << count) - 1)


def _parse_efficient(payload: bytes) -> tuple[int, list[bytes]]:
    bits = _Bits(payload)
    cmr = bits.take(4)
    tocs: list[int] = []
    while True:
        if len(tocs) >= MAX_FRAMES:
            raise ValueError("AMR: too many frames")
        entry = bits.take(6)  # F FT(4) Q
        tocs.append(entry)
        if not entry & 0x20:
            break
    frames = []
    for entry in tocs:
        frame_type, quality = (entry >> 1) & 0x0F, entry & 1
        count = _frame_bits(frame_type)
        speech = bits.take(count)
        size = (count + 7) // 8
        aligned = speech << (8 * size - count) if count else 0
        frames.append(bytes([(frame_type << 3) | (quality << 2)]) + aligned.to_bytes(size, "big"))
    return cmr, frames


def build(frames: list[bytes], octet_aligned: bool, cmr: int = NO_CMR) -> bytes:
    """An RTP payload of storage frames (each ToC + speech bytes); ValueError for a bad one."""
    if not frames:
        raise ValueError("AMR: no frames")
    if len(frames) == 1:
        return _build_one(frames[0], octet_aligned, cmr)
    return _build_many(frames, octet_aligned, cmr)


def _build_one(frame: bytes, octet_aligned: bool, cmr: int) -> bytes:
    """`_build_many` of one frame (a property test compares them), with the layout of its
    frame type looked up instead of worked out."""
    layout = _ONE_FRAME[(frame[0] >> 3) & 0x0F] if frame else None
    if layout is None or len(frame) != 1 + layout[2]:
        raise ValueError("AMR: storage frame of the wrong size")
    if octet_aligned:
        return bytes((cmr << 4, frame[0] & 0x7C)) + frame[1:]
    total, bits, _size, shift = layout
    value = (cmr << 6) | ((frame[0] >> 2) & 0x1F)  # F = 0: the last (only) frame
    if bits:
        value = (value << bits) | (int.from_bytes(frame[1:], "big") >> shift)
    return (value << (8 * total - 10 - bits)).to_bytes(total, "big")


def _build_many(frames: list[bytes], octet_aligned: bool, cmr: int) -> bytes:
    if octet_aligned:
        for frame in frames:  # first: an empty frame has no ToC to read
            _check(frame)
        tocs = bytes(
            (frame[0] & 0x7C) | (0x80 if i < len(frames) - 1 else 0)
            for i, frame in enumerate(frames)
        )
        return bytes([cmr << 4]) + tocs + b"".join(frame[1:] for frame in frames)
    value, count = cmr, 4
    for i, frame in enumerate(frames):
        _check(frame)
        follows = 1 if i < len(frames) - 1 else 0
        value = (value << 6) | (follows << 5) | ((frame[0] >> 2) & 0x1F)
        count += 6
    for frame in frames:
        frame_bits = _frame_bits((frame[0] >> 3) & 0x0F)
        speech = int.from_bytes(frame[1:], "big") >> (8 * (len(frame) - 1) - frame_bits)
        value, count = (value << frame_bits) | speech, count + frame_bits
    pad = -count % 8
    return (value << pad).to_bytes((count + pad) // 8, "big")


def payload_size(frames: list[bytes], octet_aligned: bool) -> int:
    """The bytes `build(frames, octet_aligned)` gives, without building it (storage frames
    from `parse`, whose sizes are right)."""
    if octet_aligned:
        return 1 + len(frames) + sum(len(frame) - 1 for frame in frames)
    bits = 4 + sum(6 + _frame_bits((frame[0] >> 3) & 0x0F) for frame in frames)
    return (bits + 7) // 8


def _check(frame: bytes) -> None:
    if not frame or len(frame) != 1 + (_frame_bits((frame[0] >> 3) & 0x0F) + 7) // 8:
        raise ValueError("AMR: storage frame of the wrong size")
