"""SDP parsing (RFC 4566) and audio offer/answer (RFC 3264)."""

from pathlib import Path

import pytest

from lwork.sip.message import parse_message
from lwork.sip.offer_answer import (
    NoCommonCodec,
    PayloadFormat,
    audio_formats,
    build_answer,
    build_offer,
    format_event_list,
    parse_event_list,
    select_audio,
)
from lwork.sip.sdp import Connection, Origin, RtpMap, SessionDescription

DATA = Path(__file__).parents[2] / "data" / "sip"
AMR_OCTET = PayloadFormat(96, "AMR", 8000, "octet-align=1")
AMR_EFFICIENT = PayloadFormat(97, "AMR", 8000)
PCMA = PayloadFormat(8, "PCMA")
PCMU = PayloadFormat(0, "PCMU")
DTMF = PayloadFormat(101, "telephone-event", 8000, "0-15")
OUR_ORIGIN = Origin("lwork", "4151823521", "4151823521", "198.51.100.7")


def body_of(name: str) -> bytes:
    return parse_message((DATA / name).read_bytes()).body


def offer_with(media_lines: str) -> SessionDescription:
    head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    return SessionDescription.parse(head + media_lines.replace("\n", "\r\n"))


@pytest.mark.parametrize("name", ["invite.sip", "ok_invite.sip"])
def test_captured_sdp_round_trips_byte_exact(name: str) -> None:
    body = body_of(name)
    assert bytes(SessionDescription.parse(body)) == body


def test_offer_fields() -> None:
    offer = SessionDescription.parse(body_of("invite.sip"))
    assert offer.origin == Origin("SBC", "1736951553", "1736951553", "203.0.113.10")
    assert offer.connection == Connection("203.0.113.12")
    [audio] = offer.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == (
        "audio",
        31294,
        "RTP/AVP",
        ["96", "8", "0", "101"],
    )
    assert audio.rtpmap(96) == RtpMap(96, "AMR", 8000)
    assert audio.fmtp(96) == "octet-align=1;mode-set=7"
    assert audio.fmtp(8) is None and audio.rtpmap(18) is None
    assert audio.attribute("ptime") == "20" and audio.direction == "sendrecv"
    assert [f.encoding for f in audio_formats(audio)] == ["AMR", "PCMA", "PCMU", "telephone-event"]


def test_answer_to_the_carrier_offer_matches_the_captured_answer() -> None:
    offer = SessionDescription.parse(body_of("invite.sip"))
    selection = select_audio(offer, [AMR_OCTET, PCMA, PCMU, DTMF])
    assert selection.codec == PayloadFormat(96, "AMR", 8000, "octet-align=1;mode-set=7")
    assert selection.telephone_event == PayloadFormat(101, "telephone-event", 8000, "0-15")
    answer = build_answer(
        offer,
        selection,
        address="198.51.100.7",
        port=40000,
        origin=OUR_ORIGIN,
        session_name="lwork",
    )
    assert bytes(answer) == body_of("ok_invite.sip")


def test_amr_octet_alignment_must_agree() -> None:
    offer = SessionDescription.parse(body_of("invite.sip"))
    selection = select_audio(offer, [AMR_EFFICIENT, PCMU])
    assert selection.codec == PCMU and selection.telephone_event is None
    with pytest.raises(NoCommonCodec):
        select_audio(offer, [AMR_EFFICIENT])


def test_offer_order_wins_and_payload_numbers_are_kept() -> None:
    offer = offer_with(
        "m=audio 4000 RTP/AVP 0 8 120 118\n"
        "a=rtpmap:120 AMR/8000\n"
        "a=rtpmap:118 telephone-event/8000\n"
        "a=fmtp:118 0-16,32\n"
    )
    selection = select_audio(offer, [AMR_EFFICIENT, PCMA, DTMF])
    assert selection.codec == PayloadFormat(8, "PCMA")  # static type without rtpmap
    assert selection.telephone_event == PayloadFormat(118, "telephone-event", 8000, "0-15")
    selection = select_audio(
        offer_with("m=audio 4000 RTP/AVP 120\na=rtpmap:120 AMR/8000\n"), [AMR_EFFICIENT]
    )
    assert selection.codec == PayloadFormat(120, "AMR")


def test_other_streams_are_rejected_and_direction_mirrored() -> None:
    offer = offer_with(
        "m=video 5000 RTP/AVP 99\na=rtpmap:99 H264/90000\nm=audio 4000 RTP/AVP 0\na=sendonly\n"
    )
    selection = select_audio(offer, [PCMU])
    answer = build_answer(offer, selection, address="198.51.100.7", port=40002, origin=OUR_ORIGIN)
    video, audio = answer.media
    assert (video.media, video.port, video.formats) == ("video", 0, ["99"])
    assert (audio.port, audio.formats, audio.direction) == (40002, ["0"], "recvonly")
    assert SessionDescription.parse(bytes(answer)).media[1].direction == "recvonly"


def test_streams_with_port_zero_or_no_common_codec() -> None:
    with pytest.raises(NoCommonCodec):
        select_audio(offer_with("m=audio 0 RTP/AVP 0\n"), [PCMU])
    with pytest.raises(NoCommonCodec):
        select_audio(offer_with("m=audio 4000 RTP/AVP 18\na=rtpmap:18 G729/8000\n"), [PCMU, PCMA])
    with pytest.raises(NoCommonCodec):
        select_audio(
            offer_with("m=audio 4000 RTP/AVP 101\na=rtpmap:101 telephone-event/8000\n"), [DTMF]
        )


def test_build_offer_parses_back() -> None:
    offer = build_offer(
        [AMR_OCTET, PCMA, PCMU, DTMF], address="198.51.100.7", port=40010, origin=OUR_ORIGIN
    )
    parsed = SessionDescription.parse(bytes(offer))
    assert [f.encoding for f in audio_formats(parsed.media[0])] == [
        "AMR",
        "PCMA",
        "PCMU",
        "telephone-event",
    ]
    assert parsed.media[0].fmtp(101) == "0-15"
    assert bytes(parsed) == bytes(offer)


def test_unusual_lines_keep_their_rfc_position() -> None:
    text = (
        "v=0\r\no=- 2 3 IN IP4 192.0.2.1\r\ns=call\r\ni=info\r\nc=IN IP4 192.0.2.1\r\n"
        "b=AS:64\r\nt=0 0\r\nr=7d 1h 0 25h\r\na=tool:x\r\n"
        "m=audio 4000/2 RTP/AVP 0\r\ni=voice\r\nc=IN IP4 192.0.2.2\r\nb=AS:32\r\na=recvonly\r\n"
    )
    parsed = SessionDescription.parse(text)
    assert bytes(parsed) == text.encode()
    assert parsed.media[0].port_count == 2 and parsed.bandwidths == ["AS:64"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v=1\r\n",
        "v=0\r\ns=-\r\nt=0 0\r\n",
        "v=0\r\no=- x 1 IN IP4 a\r\ns=-\r\nt=0 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio x RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nX=1\r\n",
        "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nc=IN IP4\r\n",
        "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\na=:x\r\n",
    ],
)
def test_malformed_sdp_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        SessionDescription.parse(text)


def test_malformed_rtpmap_and_payload_types_raise_value_error() -> None:
    with pytest.raises(ValueError):
        audio_formats(offer_with("m=audio 4000 RTP/AVP 96\na=rtpmap:96 AMR\n").media[0])
    with pytest.raises(ValueError):
        audio_formats(offer_with("m=audio 4000 RTP/AVP 300\n").media[0])


def test_event_lists() -> None:
    assert parse_event_list("0-3,5, 10-11") == {0, 1, 2, 3, 5, 10, 11}
    assert format_event_list([0, 1, 2, 3, 5, 10, 11]) == "0-3,5,10-11"
    for bad in ("", "a", "5-2", "0-300", "1-"):
        with pytest.raises(ValueError):
            parse_event_list(bad)
