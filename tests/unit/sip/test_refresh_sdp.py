"""Our answer to a carrier's re-INVITE offer: the offer's first codec our SDP of the dialog
lists, at our address, or None (answer with our SDP as it was)."""

from hypothesis import given
from hypothesis import strategies as st

from lwork.sip.sdp import SessionDescription
from lwork.sip.trunk.refresh_sdp import first_codec, refresh_answer

OURS = (
    "v=0\r\no=lwork 7 3 IN IP4 10.0.0.1\r\ns=lwork\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    "m=audio 30000 RTP/AVP 102 8 0 101\r\na=rtpmap:102 AMR/8000\r\na=fmtp:102 octet-align=0\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
)


def offer(*formats: str) -> str:
    pts = " ".join(f.split()[0] for f in formats)
    maps = "".join(f"a=rtpmap:{f}\r\n" for f in formats)
    return (
        "v=0\r\no=phone 1 2 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
        f"m=audio 4000 RTP/AVP {pts}\r\n{maps}"
    )


def test_a_re_offer_of_amr_is_answered_with_amr_alone_at_our_address() -> None:
    answer = refresh_answer(OURS, offer("96 AMR/8000", "101 telephone-event/8000"), 1)
    assert answer is not None
    parsed = SessionDescription.parse(answer)
    [media] = parsed.media
    assert (media.port, media.formats) == (30000, ["96", "101"])
    assert parsed.connection is not None and parsed.connection.address == "10.0.0.1"
    assert parsed.origin.session_version == "4"  # ours (3) plus one change
    assert first_codec(answer) == "AMR/8000"


def test_an_offer_of_nothing_we_listed_gives_no_answer() -> None:
    assert refresh_answer(OURS, offer("18 G729/8000"), 1) is None
    assert refresh_answer("garbage", offer("8 PCMA/8000"), 1) is None


@given(st.text(max_size=400))
def test_any_offer_gives_an_answer_or_none(text: str) -> None:
    answer = refresh_answer(OURS, text, 1)
    assert answer is None or first_codec(answer) is not None
    first_codec(text)  # never raises
