import struct
from pathlib import Path

import pytest

from lwork.media.relay.rtp import RtpPacket, looks_like_rtcp, peek_header

DATA = Path(__file__).parents[2] / "data"


def _records(name: str) -> list[bytes]:
    raw = (DATA / name).read_bytes()
    out, pos = [], 0
    while pos < len(raw):
        (length,) = struct.unpack_from("!H", raw, pos)
        out.append(raw[pos + 2 : pos + 2 + length])
        pos += 2 + length
    return out


def test_ffmpeg_amr_capture_parses_and_round_trips() -> None:
    packets = [RtpPacket.parse(d) for d in _records("rtp_amr_ffmpeg.bin")]
    assert len(packets) == 5
    first = packets[0]
    assert first.payload_type == 97
    assert first.marker is True
    assert len(first.payload) == 33  # CMR octet, ToC octet, 31 octets of AMR 12.2 speech bits
    assert first.payload[1] >> 3 & 0x0F == 7  # ToC frame type 7 = 12.2 kbit/s
    for earlier, later in zip(packets, packets[1:], strict=False):
        assert later.sequence == (earlier.sequence + 1) & 0xFFFF
        assert later.timestamp - earlier.timestamp == 160  # 20 ms at 8000 Hz
        assert later.ssrc == first.ssrc
    for raw, packet in zip(_records("rtp_amr_ffmpeg.bin"), packets, strict=True):
        assert bytes(packet) == raw
        assert peek_header(raw) == (97, packet.sequence, packet.timestamp, packet.ssrc)


def test_round_trip_with_csrc_extension_and_padding() -> None:
    packet = RtpPacket(
        payload_type=102,
        sequence=65535,
        timestamp=0xFFFFFFFF,
        ssrc=0xDEADBEEF,
        payload=b"\x01\x02\x03",
        marker=True,
        csrc=(1, 2),
        extension=(0xBEDE, b"\x10\xaa\x00\x00"),
        padding=4,
    )
    raw = bytes(packet)
    assert raw[0] == 0x80 | 0x20 | 0x10 | 2
    assert raw[-1] == 4
    assert RtpPacket.parse(raw) == packet


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x80\x00" * 5,  # 10 bytes: short
        bytes([0x40]) + bytes(11),  # version 1
        bytes([0x82]) + bytes(11),  # two CSRCs announced, none present
        bytes([0x90]) + bytes(11) + b"\x00\x00\x00\x05",  # extension longer than packet
        bytes([0xA0]) + bytes(11) + b"\x00\x00\x00\x00",  # padding count 0
        bytes([0xA0]) + bytes(11) + b"\x00\x00\x00\x40",  # padding longer than payload
    ],
)
def test_malformed_rtp_is_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        RtpPacket.parse(raw)


def test_peek_rejects_short_and_wrong_version() -> None:
    with pytest.raises(ValueError):
        peek_header(b"\x80" * 11)
    with pytest.raises(ValueError):
        peek_header(bytes(12))


def test_rtcp_demultiplexing_by_packet_type_byte() -> None:
    assert looks_like_rtcp(b"\x80\xc8")
    assert not looks_like_rtcp(b"\x80\x66")
