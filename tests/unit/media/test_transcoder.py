"""AMR <-> G.711 transcoding, pure: the RFC 4867 payload in both modes, and the two directions
of a transcoded call fed real RTP: the tone is still the tone, each side has its own numbering,
losses are concealed, events pass, bad input is counted, never raised."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.media.codecs import amr_payload, amrnb, g711
from lwork.media.codecs.transcoder import AppToCarrier, CarrierToApp, Numbering
from lwork.media.relay.rtp import RtpPacket

pytestmark = pytest.mark.skipif(amrnb.available() is not None, reason=str(amrnb.available()))


def tone(hz: float, samples: int) -> bytes:
    return struct.pack(
        f"<{samples}h",
        *(int(12000 * math.sin(2 * math.pi * hz * n / 8000)) for n in range(samples)),
    )


def power_at(pcm: bytes, hz: float) -> float:
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    coefficient = 2 * math.cos(2 * math.pi * hz / 8000)
    s1 = s2 = 0.0
    for sample in samples:
        s1, s2 = sample + coefficient * s1 - s2, s1
    total = sum(s * s for s in samples) or 1
    return (s1 * s1 + s2 * s2 - coefficient * s1 * s2) / (total * len(samples) / 2)


def amr_packets(hz: float, count: int, octet_aligned: bool) -> list[bytes]:
    encoder, pcm = amrnb.Encoder(), tone(hz, 160 * count)
    return [
        bytes(RtpPacket(102, 1000 + i, 5000 + 160 * i, 0xA,
                        amr_payload.build([encoder.encode(pcm[320 * i : 320 * i + 320])],
                                          octet_aligned)))
        for i in range(count)
    ]  # fmt: skip


def app_to_carrier(octet_aligned: bool = True) -> AppToCarrier:
    return AppToCarrier(
        Numbering(0xC0FFEE, 65530, 4_294_967_000), amr_pt=102, octet_aligned=octet_aligned,
        g711_codec="PCMA", g711_pt=8, event_in=101, event_out=96,
    )  # fmt: skip


def test_the_bandwidth_efficient_form_bit_by_bit() -> None:
    storage = bytes([0x3C]) + b"\xff" * 30 + b"\xf0"  # 12.2, Q=1, 244 one-bits
    packed = bytes([0xF3]) + b"\xff" * 30 + bytes([0xFC])  # CMR 15, ToC 0 0111 1, bits, 2 pad
    assert amr_payload.build([storage], octet_aligned=False) == packed
    assert amr_payload.parse(packed, octet_aligned=False) == (15, [storage])
    assert amr_payload.build([storage], octet_aligned=True) == bytes([0xF0]) + storage
    for bad in (b"", b"\xf0", bytes([0xF0, 0x3C]) + bytes(30), bytes([0xF0, 0x64]) + bytes(40)):
        with pytest.raises(ValueError):
            amr_payload.parse(bad, octet_aligned=True)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([*range(9), 15]), min_size=1, max_size=4),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_any_frames_round_trip_in_both_modes(types: list[int], octet: bool, rnd: object) -> None:
    frames = []
    for frame_type in types:
        bits = 0 if frame_type == 15 else amr_payload.SPEECH_BITS[frame_type]
        value = rnd.getrandbits(bits) if bits else 0  # type: ignore[attr-defined]
        size = (bits + 7) // 8
        frames.append(bytes([frame_type << 3 | 4]) + (value << (8 * size - bits)).to_bytes(size))
    assert amr_payload.parse(amr_payload.build(frames, octet), octet) == (15, frames)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.booleans())
def test_any_payload_parses_or_is_a_value_error(payload: bytes, octet: bool) -> None:
    try:
        amr_payload.parse(payload, octet)
    except ValueError:
        pass


@pytest.mark.parametrize("octet_aligned", [True, False], ids=["octet-aligned", "efficient"])
def test_app_amr_reaches_the_carrier_as_pcma_with_our_numbering(octet_aligned: bool) -> None:
    leg = app_to_carrier(octet_aligned)
    sent = amr_packets(440, 50, octet_aligned)
    out = [RtpPacket.parse(p) for packet in sent for p in leg.receive(packet)]
    assert (
        len(out) == 50
        and {p.payload_type for p in out} == {8}
        and {p.ssrc for p in out} == {0xC0FFEE}
    )
    assert [p.sequence for p in out] == [(65530 + i) % 65536 for i in range(50)]
    assert [p.timestamp for p in out] == [(4_294_967_000 + 160 * i) % 2**32 for i in range(50)]
    pcm = g711.alaw_decode(b"".join(p.payload for p in out[10:]))
    assert power_at(pcm, 440) > 0.8


@pytest.mark.parametrize("said_octet", [True, False], ids=["said-octet", "said-efficient"])
def test_an_app_sending_the_other_payload_format_than_its_sdp_is_still_understood(
    said_octet: bool,
) -> None:
    leg = app_to_carrier(said_octet)
    sent = amr_packets(440, 50, not said_octet)
    out = [RtpPacket.parse(p) for packet in sent for p in leg.receive(packet)]
    assert len(out) == 50 and leg.counters.malformed == 0
    assert leg.counters.format_switches == 1 and leg.octet_aligned is not said_octet
    assert power_at(g711.alaw_decode(b"".join(p.payload for p in out[10:])), 440) > 0.8


def test_lost_app_packets_are_concealed_in_their_place_and_events_pass() -> None:
    leg = app_to_carrier()
    sent = amr_packets(880, 30, True)
    event = bytes(RtpPacket(101, 1030, 5000 + 160 * 30, 0xA, bytes([5, 0x0A, 0, 160]), True))
    out: list[RtpPacket] = []
    for i, packet in enumerate(sent):
        if i not in (20, 21):
            out += [RtpPacket.parse(p) for p in leg.receive(packet)]
    out += [RtpPacket.parse(p) for p in leg.receive(event)]
    audio = [p for p in out if p.payload_type == 8]
    assert [(p.timestamp - audio[0].timestamp) % 2**32 for p in audio] == [
        160 * i for i in range(30)
    ]
    assert leg.counters.concealed == 2
    assert power_at(g711.alaw_decode(audio[20].payload + audio[21].payload), 880) > 0.3
    [dtmf] = [p for p in out if p.payload_type == 96]
    assert dtmf.payload == bytes([5, 0x0A, 0, 160]) and dtmf.marker
    assert dtmf.timestamp == (audio[-1].timestamp + 160) % 2**32
    assert dtmf.sequence == (audio[-1].sequence + 1) % 2**16


def test_bad_app_input_is_counted_and_concealed_never_raised() -> None:
    leg = app_to_carrier()
    good = amr_packets(440, 3, True)
    assert len(leg.receive(good[0])) == 1
    assert leg.receive(bytes(RtpPacket(0, 1001, 5160, 0xA, bytes(160)))) == []  # PCMU: not ours
    assert leg.receive(b"\x00garbage") == []
    truncated = good[1][:20]
    assert len(leg.receive(truncated)) == 1  # a 20 ms concealed in its place
    assert leg.receive(good[1]) == []  # the same sequence number again: late
    assert len(leg.receive(good[2])) == 1
    c = leg.counters
    assert (c.wrong_type, c.malformed, c.late, c.concealed) == (1, 2, 1, 1)


@pytest.mark.parametrize("ptime_ms", [10, 20, 30])
def test_carrier_pcma_of_any_packet_length_reaches_the_app_as_20_ms_amr(ptime_ms: int) -> None:
    samples = 8 * ptime_ms
    leg = CarrierToApp(
        Numbering(0xBEEF, 7, 1234), g711_codec="PCMA", g711_pt=8, amr_pt=102,
        octet_aligned=False, event_in=101, event_out=101,
    )  # fmt: skip
    pcm = tone(440, 8000)
    out: list[RtpPacket] = []
    for i in range(8000 // samples):
        payload = g711.alaw_encode(pcm[2 * samples * i : 2 * samples * (i + 1)])
        out += [
            RtpPacket.parse(p) for p in leg.receive(bytes(RtpPacket(8, i, samples * i, 9, payload)))
        ]
    frames = (8000 // samples * samples) // 160  # 30 ms: 33 packets, 49.5 frames
    assert len(out) == frames and {p.ssrc for p in out} == {0xBEEF}
    assert [p.sequence for p in out] == list(range(7, 7 + frames))
    assert [p.timestamp for p in out] == [1234 + 160 * i for i in range(frames)]
    decoder = amrnb.Decoder()
    decoded = b"".join(
        decoder.decode(f) for p in out for f in amr_payload.parse(p.payload, False)[1]
    )
    assert power_at(decoded[3200:], 440) > 0.8 and decoder.concealed == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 8, 101, 102, 13]), st.integers(0, 70),
                          st.binary(max_size=70)), max_size=25))  # fmt: skip
def test_any_packets_into_either_direction(packets: list[tuple[int, int, bytes]]) -> None:
    there = app_to_carrier()
    back = CarrierToApp(Numbering(1, 2, 3), g711_codec="PCMU", g711_pt=0, amr_pt=102,
                        octet_aligned=True, event_in=101, event_out=101)  # fmt: skip
    for pt, sequence, payload in packets:
        packet = bytes(RtpPacket(pt, sequence, sequence * 160, 5, payload))
        for leg in (there, back):
            for out in leg.receive(packet):
                assert RtpPacket.parse(out).payload_type in (8, 96, 102, 101)
            leg.receive(payload)  # and the bare bytes, as if they were a packet
