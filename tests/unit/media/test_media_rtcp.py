from pathlib import Path

import pytest

from lwork.media.relay import rtcp

DATA = Path(__file__).parents[2] / "data"


def test_ffmpeg_sender_report_capture() -> None:
    raw = (DATA / "rtp_rtcp_sr_ffmpeg.bin").read_bytes()
    (sr,) = rtcp.parse_compound(raw)
    assert isinstance(sr, rtcp.SenderReport)
    assert sr.reports == ()
    assert sr.ntp_timestamp >> 32 > rtcp.NTP_EPOCH_OFFSET  # after 1970
    assert bytes(sr) == raw


def test_compound_sr_sdes_bye_round_trip() -> None:
    block = rtcp.ReportBlock(
        ssrc=7,
        fraction_lost=64,
        cumulative_lost=-3,
        highest_sequence=70000,
        jitter=120,
        lsr=0x12345678,
        dlsr=65536,
    )
    packets: list[rtcp.RtcpPacket] = [
        rtcp.SenderReport(1, rtcp.ntp_from_unix(1_700_000_000.5), 160, 10, 330, (block,)),
        rtcp.SourceDescription(((1, ((1, b"user@host"), (2, b"Name"))), (2, ()))),
        rtcp.Bye((1, 2), b"bye now"),
        rtcp.OtherRtcp(204, 1, b"\x00\x00\x00\x01name\x01\x02\x03\x04"),
    ]
    raw = b"".join(bytes(p) for p in packets)
    assert rtcp.parse_compound(raw) == packets


def test_receiver_report_wire_layout_by_hand() -> None:
    # V=2 RC=1 PT=201 length=7 words; ssrc 0x01020304; one block
    raw = bytes.fromhex("81c90007010203040a0b0c0d190000050001000a000000501122334400008000")
    (rr,) = rtcp.parse_compound(raw)
    assert rr == rtcp.ReceiverReport(
        0x01020304,
        (rtcp.ReportBlock(0x0A0B0C0D, 0x19, 5, 0x1000A, 0x50, 0x11223344, 0x8000),),
    )
    assert bytes(rr) == raw


def test_ntp_conversions() -> None:
    ntp = rtcp.ntp_from_unix(0.5)
    assert ntp >> 32 == rtcp.NTP_EPOCH_OFFSET
    assert ntp & 0xFFFFFFFF == 1 << 31
    assert rtcp.ntp_middle32(ntp) == ((rtcp.NTP_EPOCH_OFFSET & 0xFFFF) << 16) | 0x8000


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x81\xc9",
        bytes.fromhex("81c90010") + bytes(8),  # length says 64 bytes, 8 present
        bytes.fromhex("81c90001") + bytes(4),  # RR announces a block that is not there
        bytes.fromhex("80c80001") + bytes(4),  # SR without sender info
        bytes.fromhex("41c90001") + bytes(4),  # version 1
        bytes.fromhex("a0c90001") + bytes(3) + b"\x09",  # padding longer than body
        bytes.fromhex("80c90001") + bytes(4) + b"\x80",  # trailing junk after valid packet
        bytes.fromhex("80630001") + bytes(4),  # packet type outside 192..223
        bytes.fromhex("81ca0001") + b"\x00\x00\x00\x01",  # SDES chunk without terminator
        bytes.fromhex("81ca0002") + b"\x00\x00\x00\x01\x01\x09ab\x00",  # SDES item overruns
    ],
)
def test_lying_lengths_and_truncation_are_value_errors(raw: bytes) -> None:
    with pytest.raises(ValueError):
        rtcp.parse_compound(raw)


def test_report_block_cumulative_loss_is_clamped_to_24_bits() -> None:
    block = rtcp.ReportBlock(1, 0, 10_000_000, 0, 0, 0, 0)
    assert rtcp.ReportBlock.parse(bytes(block)).cumulative_lost == (1 << 23) - 1
