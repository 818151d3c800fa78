"""A call status's ``stats`` from rtpengine's ``query`` replies, captured from rtpengine 10.5
(Debian bookworm) on loopback: two phones sent 100 RTP packets each, then RTCP SR + SDES, then
an RR each (tests/data/rtp_rtpengine_query_rtcp.json; the callee's RR reported the caller's
stream at fraction lost 51/256, 12 packets lost, jitter 320 at 8 kHz; rtpengine kept the
callee's report only, under the callee's SSRC)."""

import json
from pathlib import Path

from lwork.calls.quality import FIELDS, party_stats
from lwork.media.ng.results import parse_call_stats

DATA = Path(__file__).parent.parent.parent / "data"


def test_rtcp_figures_map_onto_the_party_whose_stream_they_describe() -> None:
    stats = parse_call_stats(json.loads((DATA / "rtp_rtpengine_query_rtcp.json").read_text()))
    caller = party_stats(stats, "caller")
    assert caller == {
        "ip": "127.0.0.1",
        "pr": 100,
        "pl": 12,
        "avgIJ": 40.0,
        "jitter": 40.0,
        "avgrttms": 100.7,
        "rttms": 100.7,
        "lostrate": 0.19,
        "mos": 1.5,
        "total_eval": "极差",  # 19 % loss is beyond every threshold
        "missing": ["down_jitter", "down_lostrate"],  # the caller's own report was not kept
    }
    callee = party_stats(stats, "callee")  # what the callee reported is its downstream
    assert (callee["down_jitter"], callee["down_lostrate"], callee["pr"]) == (40.0, 0.19, 100)
    assert callee["missing"] == ["pl", "avgIJ", "jitter", "lostrate", "mos"]


def test_without_rtcp_only_the_counts_and_the_missing_names() -> None:
    stats = parse_call_stats(json.loads((DATA / "rtp_rtpengine_query.json").read_text()))
    [tag, *_] = stats.legs
    shown = party_stats(stats, tag)
    assert shown["pr"] == stats.legs[tag].rtp.packets > 0  # type: ignore[union-attr]
    assert shown["missing"] == [name for name in FIELDS if name not in ("ip", "pr")]
    assert party_stats(stats, "nobody") == {} and party_stats(None, "caller") == {}
