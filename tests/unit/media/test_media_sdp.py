import pytest

from lwork.media.relay.sdp_rewrite import RewriteOptions, rewrite
from lwork.media.sdp_min import build_sdp, parse_sdp

PHONE_SDP = (
    "v=0\r\n"
    "o=phone 123 1 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "a=ice-ufrag:abcd\r\n"
    "m=audio 4000 RTP/AVP 102 101\r\n"
    "a=rtpmap:102 AMR/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=rtcp:4001\r\n"
    "a=candidate:1 1 UDP 2130706431 192.0.2.10 4000 typ host\r\n"
    "m=video 5000 RTP/AVP 96\r\n"
    "c=IN IP4 192.0.2.11\r\n"
)


def test_build_then_parse_minimal_sdp() -> None:
    sdp = build_sdp("198.51.100.7", 30000)
    assert "m=audio 30000 RTP/AVP 102 101\r\n" in sdp
    media = parse_sdp(sdp)
    assert (media.ip, media.port) == ("198.51.100.7", 30000)
    assert media.rtpmap[102] == "AMR/8000"
    assert parse_sdp(build_sdp("2001:db8::1", 4, telephone_event_pt=None)).ip == "2001:db8::1"


def test_media_level_connection_wins_and_later_sections_ignored() -> None:
    sdp = (
        "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7 RTP/AVP 0\r\n"
        "c=IN IP4 10.0.0.2/127\r\nm=audio 9 RTP/AVP 0\r\n"
    )
    media = parse_sdp(sdp)
    assert (media.ip, media.port) == ("10.0.0.2", 7)


@pytest.mark.parametrize(
    "sdp",
    [
        "",
        "v=0\r\nm=audio 4 RTP/AVP 0\r\n",
        "c=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0",
        "c=IN\r\nm=audio 4 RTP/AVP 0",
    ],
)
def test_parse_rejects_sdp_without_usable_audio(sdp: str) -> None:
    with pytest.raises(ValueError):
        parse_sdp(sdp)


def test_rewrite_points_audio_at_relay_and_strips_ice() -> None:
    out = rewrite(
        PHONE_SDP,
        "203.0.113.5",
        30002,
        RewriteOptions(replace_origin=True, replace_session_connection=True, remove_ice=True),
    )
    media = parse_sdp(out)
    assert (media.ip, media.port) == ("203.0.113.5", 30002)
    assert "o=phone 123 1 IN IP4 203.0.113.5" in out
    assert "c=IN IP4 192.0.2.10" not in out
    assert "a=rtcp:30003" in out and "a=rtcp:4001" not in out
    assert "ice-ufrag" not in out and "candidate" not in out
    assert "m=video 0 RTP/AVP 96" in out
    assert "a=rtpmap:101 telephone-event/8000" in out


def test_rewrite_without_replace_keeps_session_line_but_overrides_audio() -> None:
    out = rewrite(PHONE_SDP, "203.0.113.5", 30002, RewriteOptions())
    assert "o=phone 123 1 IN IP4 192.0.2.10" in out
    assert "a=ice-ufrag:abcd" in out
    assert parse_sdp(out).ip == "203.0.113.5"
