"""`lwork stats`: the built-in relay's compact statistics of many calls, and their parsing."""

import struct
from collections.abc import Mapping
from typing import Any

import pytest

from lwork.calls.quality import leg_stats
from lwork.media.ng import bencode
from lwork.media.ng.compact import (
    COMPACT_LEG_FIELDS,
    COMPACT_REPLY_KEY,
    MAX_COMPACT_CALLS,
    parse_compact_stats,
)
from lwork.media.ng.results import parse_call_stats
from lwork.media.ng.transport import to_text
from lwork.media.relay.calls import CallTable
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.ngserver import NgServer
from lwork.media.sdp_min import build_sdp

from fakes.null_binder import NullBinder

LOCAL = ("127.0.0.1", 40000)


class Relay:
    def __init__(self, port_max: int = 30099) -> None:
        table = CallTable(RelayConfig(port_min=30000, port_max=port_max), NullBinder(), lambda: 7)
        self.table = table
        self.ng = NgServer(table, lambda *a: None, started_wall=1000.0)
        self.cookie = 0

    def send(self, message: Mapping[str, bencode.Encodable], now: float = 5.0) -> dict[bytes, Any]:
        """The decoded reply, as `NgClient` receives it."""
        self.cookie += 1
        cookie = b"c%d " % self.cookie
        reply = self.ng.handle_datagram(cookie + bencode.encode(message), now, 1000.0 + now, LOCAL)
        assert reply is not None and reply.startswith(cookie)
        decoded = bencode.decode(reply[len(cookie) :])
        assert isinstance(decoded, dict)
        return decoded

    def call(self, call_id: str, answered: bool = True) -> None:
        offer = {"command": "offer", "call-id": call_id, "from-tag": "caller",
                 "sdp": build_sdp("192.0.2.1", 4000)}  # fmt: skip
        assert self.send(offer)[b"result"] == b"ok"
        if answered:
            answer = {"command": "answer", "call-id": call_id, "from-tag": "caller",
                      "to-tag": "callee", "sdp": build_sdp("192.0.2.2", 5000)}  # fmt: skip
            assert self.send(answer)[b"result"] == b"ok"

    def rtp(self, call_id: str, count: int, lost_every: int = 0) -> None:
        call = self.table.calls[call_id]
        for leg, ssrc, source in ((call.caller, 0xA1, 4000), (call.callee, 0xB2, 5000)):
            for seq in range(1, count + 1):
                if lost_every and seq % lost_every == 0:
                    continue
                header = struct.pack("!BBHII", 0x80, 102, seq, seq * 160, ssrc)
                leg.receive_rtp(header + bytes(32), ("127.0.0.1", source), 1.0 + seq * 0.021)


def test_compact_stats_agree_with_the_full_query_of_the_same_call() -> None:
    relay = Relay()
    relay.call("call-1")
    relay.rtp("call-1", 40, lost_every=7)
    full = parse_call_stats(to_text(relay.send({"command": "query", "call-id": "call-1"})))
    compact = parse_compact_stats(relay.send({"command": "lwork stats", "call-ids": ["call-1"]}))

    assert list(compact) == ["call-1"]
    legs = compact["call-1"].legs
    assert set(legs) == set(full.legs) == {"caller", "callee"}
    for tag in ("caller", "callee"):
        leg, reference = legs[tag], full.legs[tag]
        assert leg.in_dialogue_with == reference.in_dialogue_with
        assert leg.quality == reference.quality and leg.quality is not None
        assert leg.quality.packets_lost == 5  # 35 of 40 arrived
        assert leg.rtp is not None and reference.rtp is not None
        assert (leg.rtp.endpoint, leg.rtp.packets, leg.rtp.local_port) == (
            reference.rtp.endpoint,
            reference.rtp.packets,
            reference.rtp.local_port,
        )
        # what a call status shows is the same either way
        assert leg_stats(leg) == leg_stats(reference) != {}
    assert compact["call-1"].rtp_packets == full.rtp_packets == 70


def test_unknown_calls_are_left_out_and_legs_without_media_show_nothing() -> None:
    relay = Relay()
    relay.call("ringing", answered=False)
    reply = relay.send({"command": "lwork stats", "call-ids": ["ringing", "gone"]})
    assert reply[b"fields"] == [field.encode() for field in COMPACT_LEG_FIELDS]
    stats = parse_compact_stats(reply)
    assert list(stats) == ["ringing"]
    caller = stats["ringing"].legs["caller"]
    assert caller.quality is None and caller.rtp is not None
    assert caller.rtp.endpoint == ("192.0.2.1", 4000)  # from its SDP until media latches
    assert caller.rtp.packets == 0 and leg_stats(caller) == {}
    assert set(stats["ringing"].legs) == {"caller", ""}  # the callee's tag is not known yet


def test_more_call_ids_than_one_reply_can_hold_is_an_error() -> None:
    relay = Relay()
    ids = [f"c{i}" for i in range(MAX_COMPACT_CALLS + 1)]
    reply = relay.send({"command": "lwork stats", "call-ids": ids})
    assert reply[b"result"] == b"error" and b"at most" in reply[b"error-reason"]
    assert relay.send({"command": "lwork stats", "call-ids": ids[:-1]})[b"calls"] == {}


def test_a_full_batch_fits_one_datagram() -> None:
    relay = Relay(port_max=30999)
    ids = [f"n1@@{i:032x}" for i in range(MAX_COMPACT_CALLS)]
    for call_id in ids:
        relay.call(call_id)
        relay.rtp(call_id, 3)
    datagram = relay.ng.handle_datagram(
        b"k " + bencode.encode({"command": "lwork stats", "call-ids": ids}), 5.0, 1005.0, LOCAL
    )
    assert datagram is not None and len(datagram) < 60_000
    decoded = bencode.decode(datagram[2:])
    assert isinstance(decoded, dict) and len(parse_compact_stats(decoded)) == MAX_COMPACT_CALLS


FIELDS = [field.encode() for field in COMPACT_LEG_FIELDS]
FULL_LEG = b"127.0.0.1 4000 3 30000 161 3 3 0 0 0 0 428 -1 -1 -1 -1"


def test_a_well_formed_reply_parses() -> None:
    legs = {b"a": FULL_LEG, b"b": b"- 0 0 30002"}
    reply = {b"fields": FIELDS, b"local address": b"192.0.2.9", b"calls": {b"x": legs}}
    legs = parse_compact_stats(reply)["x"].legs
    assert legs["a"].quality is not None and legs["a"].quality.rtt_ms is None
    assert legs["a"].in_dialogue_with == "b" and legs["b"].quality is None
    assert legs["b"].rtp is not None and legs["b"].rtp.endpoint is None
    assert legs["b"].rtp.local_address == "192.0.2.9" and legs["b"].rtp.local_port == 30002


@pytest.mark.parametrize(
    "reply",
    [
        {b"calls": {}},  # no field list: another relay or version
        {b"fields": FIELDS[:-1], b"calls": {}},
        {b"fields": [1, 2], b"calls": {}},
        {b"fields": FIELDS},
        {b"fields": FIELDS, b"calls": {}},  # no local address
        {b"fields": FIELDS, b"local address": b"1.2.3.4", b"calls": {b"x": [FULL_LEG]}},
        {b"fields": FIELDS, b"local address": b"1.2.3.4", b"calls": {b"x": {b"a": 5}}},
        {
            b"fields": FIELDS,
            b"local address": b"1.2.3.4",
            b"calls": {b"x": {b"a": b"127.0.0.1 4000 3"}},
        },
        {
            b"fields": FIELDS,
            b"local address": b"1.2.3.4",
            b"calls": {b"x": {b"a": FULL_LEG + b" 7"}},
        },
        {
            b"fields": FIELDS,
            b"local address": b"1.2.3.4",
            b"calls": {b"x": {b"a": FULL_LEG.replace(b"428", b"4.2")}},
        },
        {
            b"fields": FIELDS,
            b"local address": b"1.2.3.4",
            b"calls": {b"x": {b"a": b"\xff 4000 3 30000"}},
        },
        {
            b"fields": FIELDS,
            b"local address": b"1.2.3.4",
            b"calls": {b"x": {b"a": FULL_LEG + b" " * 400}},
        },
    ],
)
def test_replies_in_another_shape_are_refused(reply: dict[bytes, Any]) -> None:
    with pytest.raises(ValueError):
        parse_compact_stats(reply)


def test_a_delete_asking_for_the_compact_reply_ends_the_call_with_the_same_figures() -> None:
    relay = Relay()
    relay.call("ending")
    relay.rtp("ending", 30, lost_every=10)
    full = parse_call_stats(to_text(relay.send({"command": "query", "call-id": "ending"})))
    reply = relay.send({"command": "delete", "call-id": "ending", COMPACT_REPLY_KEY: "compact"})

    assert "ending" not in relay.table.calls
    final = parse_compact_stats(reply)["ending"]
    for tag in ("caller", "callee"):
        assert final.legs[tag].quality == full.legs[tag].quality is not None
    assert final.rtp_packets == full.rtp_packets == 54
    assert len(bencode.encode(reply)) < 600  # the full reply of such a call: ~2.6 KB
    # without the key (an older API node) the reply is the full one, as rtpengine's
    relay.call("older")
    assert b"tags" in relay.send({"command": "delete", "call-id": "older"})
    assert relay.send({"command": "delete", "call-id": "gone", COMPACT_REPLY_KEY: "compact"})[
        b"warning"
    ]
