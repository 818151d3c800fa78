"""Which calls the relay transcodes, from the two legs' SDPs."""

from hypothesis import given
from hypothesis import strategies as st

from lwork.media.relay.transcode_plan import LegCodec, leg_codec, plan
from lwork.media.sdp_min import build_sdp, parse_sdp


def codec_of(sdp: str) -> LegCodec | None:
    return leg_codec(parse_sdp(sdp))


APP = build_sdp("10.0.0.1", 4000)
APP_OCTET = build_sdp("10.0.0.1", 4000, fmtp="mode-change-capability=2; octet-align=1")


def carrier(*formats: str) -> str:
    lines = [
        "v=0", "o=- 1 1 IN IP4 10.0.0.9", "s=-", "c=IN IP4 10.0.0.9", "t=0 0",
        f"m=audio 5000 RTP/AVP {' '.join(f.split()[0] for f in formats)}",
    ]  # fmt: skip
    lines += [f"a=rtpmap:{f}" for f in formats if "/" in f]
    return "\r\n".join(lines) + "\r\n"


def test_the_apps_amr_with_its_payload_format_and_events() -> None:
    assert codec_of(APP) == LegCodec("AMR", 102, False, 101)
    assert codec_of(APP_OCTET) == LegCodec("AMR", 102, True, 101)


def test_a_carriers_first_codec_static_or_mapped_as_lwork_answers_it() -> None:
    assert codec_of(carrier("8", "0")) == LegCodec("PCMA", 8, False, None)
    assert codec_of(carrier("0 PCMU/8000", "96 telephone-event/8000")) == LegCodec(
        "PCMU", 0, False, 96
    )
    assert codec_of(carrier("8", "97 AMR/8000")) == LegCodec("PCMA", 8, False, None)
    assert codec_of(carrier("97 AMR/8000", "8")) == LegCodec("AMR", 97, False, None)
    assert codec_of(carrier("18 G729/8000")) is None


def test_only_amr_against_g711_is_transcoded_whichever_leg_offered() -> None:
    app, pcma = codec_of(APP), codec_of(carrier("8"))
    out = plan(30000, app, 30002, pcma)
    assert out is not None and (out.app_port, out.carrier_port) == (30000, 30002)
    inbound = plan(30000, pcma, 30002, app)
    assert inbound is not None and (inbound.app_port, inbound.carrier_port) == (30002, 30000)
    assert plan(30000, app, 30002, app) is None  # app to app, or an AMR carrier
    assert plan(30000, pcma, 30002, codec_of(carrier("0"))) is None  # a callback: forwarded
    assert plan(30000, app, 30002, None) is None  # not answered yet, or a codec we do not code


LINES = st.sampled_from([
    "m=audio 5000 RTP/AVP 8 0 101 97", "m=audio 5000 RTP/AVP", "m=video 6000 RTP/AVP 96",
    "c=IN IP4 10.0.0.9", "a=rtpmap:97 AMR/8000", "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:97 octet-align=1", "a=fmtp:97", "a=fmtp:x octet-align", "a=rtpmap:8",
])  # fmt: skip


@given(st.lists(st.one_of(LINES, st.text(max_size=40)), max_size=12))
def test_any_sdp_gives_a_codec_none_or_a_value_error(lines: list[str]) -> None:
    try:
        media = parse_sdp("\r\n".join(lines))
    except ValueError:
        return
    codec = leg_codec(media)
    assert codec is None or codec.encoding in ("AMR", "PCMA", "PCMU")
    assert codec is None or codec.payload_type in media.payload_types
