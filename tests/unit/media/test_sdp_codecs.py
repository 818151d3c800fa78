"""The ng `codec.transcode` option as lwork asks it (`ng_transcoding.offer_codecs`) and as the
built-in relay honours it (`sdp_codecs.add_codecs`)."""

from hypothesis import given
from hypothesis import strategies as st

from lwork.media.ng_transcoding import first_codec, offer_codecs
from lwork.media.relay.sdp_codecs import add_codecs
from lwork.media.sdp_min import build_sdp, parse_sdp

AMR = build_sdp("10.0.0.1", 4000)
PCMA = build_sdp("10.0.0.1", 4000, payload_type=8, encoding="PCMA/8000", fmtp=None)


def test_an_app_asks_for_g711_and_a_g711_carrier_for_amr() -> None:
    assert offer_codecs(AMR) == {"transcode": ["PCMA", "PCMU"]}
    assert offer_codecs(PCMA) == {"transcode": ["AMR"]}
    g729 = build_sdp("10.0.0.1", 4000, payload_type=18, encoding="G729/8000", fmtp=None)
    assert offer_codecs(g729) is None and first_codec("not sdp") is None


def test_the_asked_codecs_come_after_the_offers_and_before_telephone_event() -> None:
    media = parse_sdp(add_codecs(AMR, ["PCMA", "PCMU", "G729"]))
    assert media.payload_types == (102, 8, 0, 101)
    assert media.port == 4000 and media.ip == "10.0.0.1"
    amr = parse_sdp(add_codecs(PCMA, ["AMR"]))
    assert amr.payload_types == (8, 102, 101) and amr.rtpmap[102] == "AMR/8000"
    assert add_codecs(AMR, ["AMR"]) == AMR  # nothing to add: as it was


def test_a_taken_payload_type_gives_the_added_codec_a_free_dynamic_one() -> None:
    taken = build_sdp("10.0.0.1", 4000, payload_type=102, encoding="opus/48000/2", fmtp=None)
    media = parse_sdp(add_codecs(taken, ["AMR"]))
    assert media.rtpmap[96] == "AMR/8000" and media.rtpmap[102] == "opus/48000/2"


@given(st.text(max_size=300), st.lists(st.sampled_from(["AMR", "PCMA", "PCMU", "x"])))
def test_any_sdp_gets_the_codecs_or_a_value_error(text: str, names: list[str]) -> None:
    try:
        out = add_codecs(text, names)
    except ValueError:
        return
    assert isinstance(out, str)
