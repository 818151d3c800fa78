"""ng command handling over the pure call table, with a port binder that only records."""

from collections.abc import Mapping

import pytest

from lwork.media.ng import bencode
from lwork.media.relay.calls import CallTable
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.dtmf import ScheduledPacket
from lwork.media.relay.ngserver import NgServer
from lwork.media.relay.session import Address, Leg
from lwork.media.sdp_min import build_sdp, parse_sdp

LOCAL = ("127.0.0.1", 40000)


class RecordingBinder:
    """Stands in for sockets: the boundary, not our logic."""

    def __init__(self, busy: frozenset[int] = frozenset()) -> None:
        self.busy = busy
        self.open: set[int] = set()
        self.attached: list[str] = []

    def open_pair(self, port: int) -> None:
        if port in self.busy:
            raise OSError("address in use")
        self.open.add(port)

    def attach(self, leg: Leg) -> None:
        self.attached.append(leg.tag)

    def close_pair(self, port: int) -> None:
        self.open.discard(port)

    def transcode(self, call: object, plan: object) -> bool:
        return False

    def untranscode(self, call: object) -> None:
        pass


class Harness:
    def __init__(self, port_min: int = 30000, port_max: int = 30099, **kw: object) -> None:
        self.config = RelayConfig(port_min=port_min, port_max=port_max, **kw)  # type: ignore[arg-type]
        self.binder = RecordingBinder(frozenset({30004}))
        self.table = CallTable(self.config, self.binder, iter(range(1000, 100000)).__next__)
        self.dtmf: list[tuple[Leg, Address, list[ScheduledPacket], float]] = []
        self.ng = NgServer(self.table, lambda *a: self.dtmf.append(a), started_wall=1000.0)
        self.now = 1.0
        self.cookie = 0

    def send(self, message: Mapping[str, bencode.Encodable]) -> dict[bytes, bencode.BValue]:
        self.cookie += 1
        reply = self.ng.handle_datagram(
            f"c{self.cookie} ".encode() + bencode.encode(message),
            self.now,
            1000.0 + self.now,
            LOCAL,
        )
        assert reply is not None and reply.startswith(f"c{self.cookie} ".encode())
        decoded = bencode.decode(reply.partition(b" ")[2])
        assert isinstance(decoded, dict)
        return decoded


def _offer(h: Harness, call_id: str = "call-1") -> dict[bytes, bencode.BValue]:
    return h.send(
        {
            "command": "offer",
            "call-id": call_id,
            "from-tag": "alice",
            "sdp": build_sdp("192.0.2.1", 4000),
            "replace": ["origin", "session-connection"],
            "ICE": "remove",
        }
    )


def test_ping() -> None:
    assert Harness().send({"command": "ping"}) == {b"result": b"pong"}


def test_offer_answer_allocate_even_pairs_and_rewrite_sdp() -> None:
    h = Harness()
    offer = _offer(h)
    assert offer[b"result"] == b"ok"
    callee_port = parse_sdp(offer[b"sdp"].decode()).port  # type: ignore[union-attr]
    answer = h.send(
        {
            "command": "answer",
            "call-id": "call-1",
            "from-tag": "alice",
            "to-tag": "bob",
            "sdp": build_sdp("192.0.2.2", 5000),
        }
    )
    caller_port = parse_sdp(answer[b"sdp"].decode()).port  # type: ignore[union-attr]
    assert {caller_port, callee_port} == {30000, 30002}
    assert caller_port % 2 == 0 and callee_port % 2 == 0
    call = h.table.calls["call-1"]
    assert (call.caller.tag, call.caller.rtp_port, call.caller.advertised) == (
        "alice",
        caller_port,
        ("192.0.2.1", 4000),
    )
    assert (call.callee.tag, call.callee.advertised) == ("bob", ("192.0.2.2", 5000))
    assert h.binder.open == {30000, 30002}


def test_retransmitted_offer_gets_the_cached_reply_and_no_new_ports() -> None:
    h = Harness()
    datagram = b"same-cookie " + bencode.encode(
        {"command": "offer", "call-id": "x", "from-tag": "a", "sdp": build_sdp("192.0.2.1", 4)}
    )
    first = h.ng.handle_datagram(datagram, 1.0, 1001.0, LOCAL)
    second = h.ng.handle_datagram(datagram, 1.5, 1001.5, LOCAL)
    assert first == second
    assert h.table.pool.in_use == 2
    assert h.ng.counters.retransmissions == 1


def test_query_delete_and_list_shapes() -> None:
    h = Harness()
    _offer(h)
    listed = h.send({"command": "list"})
    assert listed[b"calls"] == [b"call-1"]
    query = h.send({"command": "query", "call-id": "call-1"})
    assert set(query) >= {b"result", b"created", b"last signal", b"tags", b"totals", b"SSRC"}
    tags = query[b"tags"]
    assert isinstance(tags, dict) and set(tags) == {b"alice", b"<untagged 1>"}
    totals = query[b"totals"]
    assert isinstance(totals, dict)
    assert totals[b"RTP"] == {b"packets": 0, b"bytes": 0, b"errors": 0}
    deleted = h.send({"command": "delete", "call-id": "call-1", "from-tag": "alice"})
    assert deleted[b"result"] == b"ok" and b"tags" in deleted
    assert h.binder.open == set() and h.table.pool.in_use == 0
    again = h.send({"command": "delete", "call-id": "call-1"})
    assert again[b"result"] == b"ok" and b"warning" in again
    fatal = h.send({"command": "delete", "call-id": "call-1", "flags": ["fatal"]})
    assert fatal[b"result"] == b"error"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"command": "query", "call-id": "nope"}, b"Unknown call-id"),
        (
            {
                "command": "answer",
                "call-id": "nope",
                "from-tag": "a",
                "to-tag": "b",
                "sdp": build_sdp("1.2.3.4", 4),
            },
            b"Unknown call-id",
        ),
        (
            {"command": "offer", "call-id": "x", "from-tag": "a", "sdp": "v=0\r\n"},
            b"Failed to parse SDP",
        ),
        ({"command": "offer", "call-id": "x", "sdp": build_sdp("1.2.3.4", 4)}, b"No 'from-tag'"),
        ({"command": "launch"}, b"Unrecognized command"),
        ({"nocommand": 1}, b"No 'command'"),
        ({"command": "list", "limit": 0}, b"limit"),
    ],
)
def test_errors_use_result_error_and_reason(
    message: dict[str, bencode.Encodable], reason: bytes
) -> None:
    reply = Harness().send(message)
    assert reply[b"result"] == b"error"
    assert reason in reply[b"error-reason"]  # type: ignore[operator]
    assert set(reply) == {b"result", b"error-reason"}


def test_garbage_datagrams_never_raise() -> None:
    h = Harness()
    assert h.ng.handle_datagram(b"", 1.0, 1.0, LOCAL) is None
    assert h.ng.handle_datagram(b"nospace", 1.0, 1.0, LOCAL) is None
    reply = h.ng.handle_datagram(b"c1 d3:key", 1.0, 1.0, LOCAL)
    assert reply is not None and b"error" in reply
    reply = h.ng.handle_datagram(b"c2 li1ee", 1.0, 1.0, LOCAL)
    assert reply is not None and b"not a dictionary" in reply
    assert h.ng.counters.malformed == 4


def test_port_exhaustion_is_a_clean_error_and_busy_ports_are_skipped() -> None:
    h = Harness(port_min=30000, port_max=30007)  # pairs 30000, 30002, 30004 (busy), 30006
    assert _offer(h, "one")[b"result"] == b"ok"
    reply = _offer(h, "two")
    assert reply[b"result"] == b"error"
    assert b"no free RTP/RTCP port pair" in reply[b"error-reason"]  # type: ignore[operator]
    assert h.table.pool.in_use == 2  # the half-allocated pair was given back
    h.send({"command": "delete", "call-id": "one"})
    assert _offer(h, "three")[b"result"] == b"ok"
    stats = h.send({"command": "statistics"})[b"statistics"]
    assert isinstance(stats, dict)
    totals = stats[b"totalstatistics"]
    assert isinstance(totals, dict) and totals[b"rejectedsessions"] == 1


def test_play_dtmf_targets_the_other_party() -> None:
    h = Harness()
    _offer(h)
    dtmf: dict[str, bencode.Encodable] = {
        "command": "play DTMF",
        "call-id": "call-1",
        "from-tag": "alice",
        "code": "#",
    }
    early = h.send(dtmf)  # the callee has not answered: nowhere to send yet
    assert early[b"result"] == b"error"
    h.send(
        {
            "command": "answer",
            "call-id": "call-1",
            "from-tag": "alice",
            "to-tag": "bob",
            "sdp": build_sdp("192.0.2.2", 5000),
        }
    )
    assert h.send({**dtmf, "duration": 100}) == {b"result": b"ok"}
    assert h.send({**dtmf, "code": 3}) == {b"result": b"ok"}
    (target, destination, packets, delay), (_, _, _, queued_delay) = h.dtmf
    assert target is h.table.calls["call-1"].callee
    assert destination == ("192.0.2.2", 5000)
    assert len(packets) == 7 and delay == 0.0
    assert queued_delay == pytest.approx(0.1 + 0.1)  # previous digit plus the 100 ms pause
    bad = h.send({**dtmf, "code": "X"})
    assert bad[b"result"] == b"error"


def test_media_timeout_expires_idle_calls() -> None:
    h = Harness(media_timeout_s=5.0, offer_timeout_s=30.0)
    _offer(h)
    call = h.table.calls["call-1"]
    call.caller.receive_rtp(bytes(12 * [0x80]), ("192.0.2.1", 4000), 2.0)
    assert h.table.expired(6.9) == []
    assert h.table.expired(7.0) == ["call-1"]
    assert h.table.totals.timed_out == 1


def test_the_timeout_sweep_looks_at_each_call_once_per_round_a_slice_at_a_time() -> None:
    h = Harness(media_timeout_s=5.0, offer_timeout_s=30.0)
    for k in range(5):
        _offer(h, f"call-{k}")
    for k in (1, 3):  # media seen at t=2.0: timed out from t=7.0; the others not before 31.0
        h.table.calls[f"call-{k}"].caller.receive_rtp(bytes(12 * [0x80]), ("192.0.2.1", 4000), 2.0)
    # One round of 2 + 2 + 1 calls, from the newest: each call looked at once.
    assert [h.table.expired(10.0, 2) for _ in range(3)] == [["call-3"], ["call-1"], []]
    assert h.table.totals.timed_out == 2
    h.table.delete("call-1")
    h.table.delete("call-3")
    # The next round sees the calls left; at 40 s all three are past the offer timeout.
    assert h.table.expired(40.0, 2) == ["call-2", "call-4"]
    assert h.table.expired(40.0, 0) == ["call-0"]  # at least one call per slice
    assert h.table.expired(40.0) == ["call-0", "call-2", "call-4"]  # no slice: all at once


def test_payload_clock_comes_from_the_offered_codec() -> None:
    h = Harness()
    wideband = build_sdp("192.0.2.1", 4000, payload_type=104, encoding="AMR-WB/16000")
    h.send({"command": "offer", "call-id": "wb", "from-tag": "a", "sdp": wideband})
    assert h.table.calls["wb"].caller.clock_rate == 16000
    pcmu = "v=0\r\nc=IN IP4 192.0.2.2\r\nm=audio 5000 RTP/AVP 0\r\n"
    h.send({"command": "answer", "call-id": "wb", "from-tag": "a", "to-tag": "b", "sdp": pcmu})
    assert h.table.calls["wb"].callee.clock_rate == 8000


def test_relay_reports_are_spread_over_the_interval_per_call() -> None:
    h = Harness(port_min=30000, port_max=30999, rtcp_interval_s=5.0)
    phases = iter([n / 100 for n in range(100)] + [0.5] * 1000)
    h.table.jitter = lambda: next(phases)
    for n in range(100):
        _offer(h, f"call-{n}")
        call = h.table.calls[f"call-{n}"]
        call.caller.receive_rtp(bytes([0x80, 0, 0, 1] + 8 * [0]), ("192.0.2.1", 4000), 1.0)
    h.table.delete("call-7")
    sent: list[int] = []
    ticks = [1.0 + 0.1 * n for n in range(1, 51)]  # one interval in 0.1 s ticks
    for now in ticks:
        reports = h.table.rtcp_reports(now, 1000.0 + now)
        sent.append(len(reports))
        assert all(leg.rtcp_destination() == ("192.0.2.1", 4001) for leg, _, _ in reports)
    # every live call reported exactly once in its first interval, two or three per tick
    assert sum(sent) == 99
    assert max(sent) <= 3
    # each call reports again an interval (times 0.5-1.5, here 1) after its last report
    assert h.table.rtcp_reports(6.05, 1006.05) == []
    assert len(h.table.rtcp_reports(11.05, 1011.05)) == 99
