import pytest

from lwork.media.relay.dtmf import TelephoneEvent, digit_code, generate_event
from lwork.media.relay.rtp import RtpPacket


def test_digit_codes() -> None:
    assert [digit_code(d) for d in "09*#AbD"] == [0, 9, 10, 11, 12, 13, 15]
    assert digit_code(15) == 15
    for bad in ("E", "55", "", 16, -1):
        with pytest.raises(ValueError):
            digit_code(bad)


def test_event_payload_round_trip() -> None:
    event = TelephoneEvent(event=11, end=True, volume=10, duration=1600)
    assert bytes(event) == bytes([11, 0x80 | 10, 0x06, 0x40])
    assert TelephoneEvent.parse(bytes(event)) == event
    with pytest.raises(ValueError):
        TelephoneEvent.parse(b"\x01\x02")


def test_generated_event_follows_rfc4733() -> None:
    scheduled = generate_event(
        5, ssrc=99, first_sequence=65534, timestamp=8000, payload_type=101, duration_ms=100
    )
    packets = [RtpPacket.parse(s.data) for s in scheduled]
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert [p.sequence for p in packets] == [65534, 65535, 0, 1, 2, 3, 4]
    assert {p.timestamp for p in packets} == {8000}
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert {p.payload_type for p in packets} == {101}
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {5}
    assert [s.offset for s in scheduled] == pytest.approx([0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12])


def test_very_short_event_is_still_marked_and_ended() -> None:
    packets = [
        RtpPacket.parse(s.data)
        for s in generate_event(1, ssrc=1, first_sequence=0, timestamp=0, duration_ms=10)
    ]
    assert len(packets) == 3
    assert packets[0].marker
    assert all(TelephoneEvent.parse(p.payload).end for p in packets)
