"""Every media parser: arbitrary bytes give a value or ValueError, never another exception."""

import struct

from hypothesis import example, given, settings
from hypothesis import strategies as st

from lwork.media.ng import bencode
from lwork.media.ng.compact import COMPACT_LEG_FIELDS, parse_compact_stats
from lwork.media.relay import rtcp
from lwork.media.relay.calls import CallTable
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.dtmf import TelephoneEvent
from lwork.media.relay.leg_reports import leg_quality, own_report
from lwork.media.relay.ngserver import NgServer
from lwork.media.relay.rtp import RtpPacket, peek_header
from lwork.media.relay.sdp_rewrite import RewriteOptions, rewrite
from lwork.media.relay.session import MAX_STREAMS_PER_LEG, Leg
from lwork.media.relay.stats import StreamReceiver
from lwork.media.sdp_min import parse_sdp

from fakes.null_binder import NullBinder

FUZZ = settings(max_examples=300, deadline=None)


def _value_or_value_error(parse: object, data: object) -> None:
    assert callable(parse)
    try:
        parse(data)
    except ValueError:
        pass


@FUZZ
@given(st.binary(max_size=300))
def test_bencode_decode(data: bytes) -> None:
    _value_or_value_error(bencode.decode, data)


bvalues = st.recursive(
    st.integers(-(2**63), 2**63) | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.binary(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(bvalues)
def test_bencode_round_trip(value: bencode.BValue) -> None:
    assert bencode.decode(bencode.encode(value)) == value


@FUZZ
@given(st.binary(max_size=200))
def test_rtp_parse(data: bytes) -> None:
    _value_or_value_error(RtpPacket.parse, data)
    _value_or_value_error(peek_header, data)


@FUZZ
@given(
    st.integers(0, 127),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=64),
    st.lists(st.integers(0, 2**32 - 1), max_size=15),
    st.integers(0, 255),
)
def test_rtp_round_trip(
    pt: int, seq: int, ts: int, payload: bytes, csrc: list[int], pad: int
) -> None:
    packet = RtpPacket(pt, seq, ts, 1, payload, csrc=tuple(csrc), padding=pad)
    assert RtpPacket.parse(bytes(packet)) == packet


@FUZZ
@given(st.binary(max_size=300))
def test_rtcp_parse(data: bytes) -> None:
    _value_or_value_error(rtcp.parse_compound, data)


@FUZZ
@given(st.integers(0, 31), st.integers(192, 223), st.integers(0, 0xFFFF), st.binary(max_size=120))
def test_rtcp_with_lying_header(count: int, packet_type: int, words: int, body: bytes) -> None:
    data = struct.pack("!BBH", 0x80 | count, packet_type, words) + body
    _value_or_value_error(rtcp.parse_compound, data)


@FUZZ
@given(st.binary(max_size=8))
def test_telephone_event_parse(data: bytes) -> None:
    _value_or_value_error(TelephoneEvent.parse, data)


@FUZZ
@given(st.text(max_size=300))
# Found by bench/fuzz_parsers.py: a bare "m=audio" line before the stream parse_sdp accepts.
@example("v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio \r\nm=audio 4000 RTP/AVP 0\r\n")
def test_sdp_parse_and_rewrite(text: str) -> None:
    _value_or_value_error(parse_sdp, text)
    _value_or_value_error(
        lambda t: rewrite(t, "192.0.2.1", 30000, RewriteOptions(True, True, True)), text
    )


_commands = st.sampled_from(
    [b"offer", b"answer", b"query", b"delete", b"list", b"play DTMF", b"ping", b"statistics",
     b"lwork stats"]
)  # fmt: skip
_requests = st.dictionaries(
    st.sampled_from(
        [
            b"command",
            b"call-id",
            b"from-tag",
            b"to-tag",
            b"sdp",
            b"flags",
            b"code",
            b"limit",
            b"replace",
            b"ICE",
            b"call-ids",
        ]
    ),
    _commands | bvalues | st.just(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4 RTP/AVP 0\r\n"),
    max_size=7,
)


@FUZZ
@given(st.lists(st.binary(max_size=120) | _requests.map(bencode.encode), max_size=8))
def test_ng_server_answers_or_drops_any_datagram(bodies: list[bytes]) -> None:
    table = CallTable(RelayConfig(port_min=30000, port_max=30010), NullBinder(), lambda: 7)
    server = NgServer(table, lambda *a: None, started_wall=0.0)
    for i, body in enumerate(bodies):
        reply = server.handle_datagram(b"k%d " % i + body, float(i), float(i), ("127.0.0.1", 9))
        assert reply is None or reply.startswith(b"k%d " % i)


@FUZZ
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=80), st.integers(0, 3)), max_size=30))
def test_leg_survives_any_datagrams(datagrams: list[tuple[bool, bytes, int]]) -> None:
    a = Leg(tag="a", rtp_port=30000, relay_ssrc=1, created=0.0, advertised=("192.0.2.1", 4))
    b = Leg(tag="b", rtp_port=30002, relay_ssrc=2, created=0.0)
    a.other, b.other = b, a
    for i, (is_rtcp, data, source) in enumerate(datagrams):
        address = ("192.0.2.9", 1000 + source)
        if is_rtcp:
            a.receive_rtcp(data, address, i * 0.02)
        else:
            a.receive_rtp(data, address, i * 0.02)
    leg_quality(a)
    own_report(a, 0, 0, 1.0, a.relay_ssrc, 0, 0)
    assert len(a.receivers) <= MAX_STREAMS_PER_LEG


@FUZZ
@given(
    st.integers(0, 0xFFFF),
    st.lists(st.tuples(st.integers(-5, 200), st.floats(0, 0.1)), min_size=1, max_size=200),
)
def test_stream_statistics_invariants(first: int, steps: list[tuple[int, float]]) -> None:
    receiver = StreamReceiver(1, 8000, first, 0.0)
    now, seq = 0.0, first
    for delta, gap in steps:
        seq = (seq + delta) & 0xFFFF
        now += gap
        receiver.on_packet(seq, seq * 160, 172, now)
        assert receiver.expected - receiver.received == receiver.lost
        assert receiver.jitter >= 0.0
        assert 0 <= receiver.close_interval() <= 255
        block = rtcp.ReportBlock.parse(bytes(receiver.report_block(0, 0)))
        assert block.highest_sequence == receiver.extended_max & 0xFFFFFFFF


_compact_values = st.recursive(
    st.integers(-5, 2**40) | st.binary(max_size=8) | st.just(b"1 2 3 4") | st.just(b"- 0 0 1"),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.binary(max_size=8), inner),
    max_leaves=40,
)


@FUZZ
@given(_compact_values)
def test_compact_stats_parse_or_value_error(calls: object) -> None:
    fields = [f.encode() for f in COMPACT_LEG_FIELDS]
    reply = {b"fields": fields, b"local address": b"127.0.0.1", b"calls": calls}
    _value_or_value_error(parse_compact_stats, reply)
