"""Redundant datagrams (original-behavior.md §8): the unpacker, the duplicate filter, and a leg
relaying each original packet once."""

from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.media.relay.redundant import SeenWindow, unpack
from lwork.media.relay.rtp import RtpPacket, peek_header
from lwork.media.relay.session import Leg

A = ("192.0.2.1", 4000)
B = ("192.0.2.2", 5000)


def _rtp(seq: int, ssrc: int = 0xA, pt: int = 102, size: int = 32) -> bytes:
    return bytes(RtpPacket(pt, seq, seq * 160, ssrc, bytes([seq & 0xFF]) * size))


def _two(first: bytes, second: bytes) -> bytes:
    return bytes([len(first), len(second)]) + first + second


def _three(first: bytes, second: bytes, third: bytes) -> bytes:
    return bytes([3 << 5, len(first), len(second), len(third)]) + first + second + third


def _pair() -> tuple[Leg, Leg]:
    a = Leg(tag="a", rtp_port=30000, relay_ssrc=1, created=0.0, advertised=A)
    b = Leg(tag="b", rtp_port=30002, relay_ssrc=2, created=0.0, advertised=B)
    a.other, b.other = b, a
    return a, b


def test_unpacks_both_forms_newest_first_as_sent() -> None:
    assert unpack(_two(_rtp(2), _rtp(1))) == [_rtp(2), _rtp(1)]
    assert unpack(_three(_rtp(3), _rtp(2), _rtp(1))) == [_rtp(3), _rtp(2), _rtp(1)]
    assert unpack(_three(_rtp(3, size=31), _rtp(2, size=0), _rtp(1, size=5))) == [
        _rtp(3, size=31),
        _rtp(2, size=0),
        _rtp(1, size=5),
    ]


def test_a_single_packet_and_look_alikes_are_not_packed() -> None:
    assert unpack(_rtp(1)) is None
    two = _two(_rtp(2), _rtp(1))
    assert unpack(two + b"\x00") is None  # the lengths lie: one byte more than they add up to
    assert unpack(two[:-1]) is None  # truncated
    assert unpack(bytes([40, 40]) + bytes(80)) is None  # sizes add up, no RTP behind them
    not_audio = bytes(RtpPacket(72, 1, 0, 1, bytes(20)))  # PT 72: an RTCP SR's byte
    assert unpack(_two(not_audio, _rtp(1))) is None
    assert unpack(_two(_rtp(2), b"\x80" * 11)) is None  # the second is shorter than a header
    assert unpack(b"") is None and unpack(b"\x60") is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_packets_that_add_up_or_none(data: bytes) -> None:
    packets = unpack(data)
    if packets is not None:
        prefix = len(data) - sum(len(p) for p in packets)
        assert prefix == len(packets) + (1 if len(packets) == 3 else 0)
        assert b"".join(packets) == data[prefix:]
        assert all(RtpPacket.parse(p).payload_type >= 0 for p in packets)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 65535), min_size=1, max_size=3, unique=True),
    st.lists(st.integers(0, 200), min_size=3, max_size=3),
)
def test_any_packed_datagram_round_trips(sequences: list[int], sizes: list[int]) -> None:
    packets = [_rtp(seq, size=size) for seq, size in zip(sequences, sizes, strict=False)]
    if len(packets) == 1 or any(len(p) > 255 for p in packets):
        return
    data = _two(*packets) if len(packets) == 2 else _three(*packets)
    assert unpack(data) == packets


def test_the_window_admits_each_sequence_once_across_the_wrap() -> None:
    seen = SeenWindow()
    order = [65534, 65533, 65535, 65534, 0, 65535, 1, 0, 65533]
    assert [seen.first_time(7, s) for s in order] == [
        True, True, True, False, True, False, True, False, False,
    ]  # fmt: skip
    assert seen.first_time(8, 1)  # a new SSRC starts afresh
    assert seen.first_time(8, 30000)  # a restart far behind or ahead is followed
    assert seen.first_time(8, 1)


def test_leg_relays_each_original_packet_once_oldest_first_and_counts_it_once() -> None:
    a, b = _pair()
    assert a.receive_rtp(_two(_rtp(1), _rtp(0)), A, 1.0) is None
    assert (a.unpacked, a.unpacked_to) == ([_rtp(0), _rtp(1)], B)
    a.unpacked_to = None  # what the port does once it sent them
    assert a.rtp_from_peer(_three(_rtp(3), _rtp(2), _rtp(1)), 1.02) is None
    assert (a.unpacked, a.unpacked_to) == ([_rtp(2), _rtp(3)], B)
    a.unpacked_to = None
    # After packed datagrams, a single packet repeating one of them is a duplicate too.
    assert a.rtp_from_peer(_rtp(3), 1.04) is None and a.unpacked_to is None
    assert a.rtp_from_peer(_rtp(4), 1.06) == B
    assert (a.rtp.packets, a.duplicates, a.packed_datagrams, a.rtp.errors) == (5, 2, 2, 0)
    receiver = a.receivers[0xA]
    assert (receiver.received, receiver.expected) == (5, 5)
    assert b.sent_packets == 5


def test_leg_counts_a_lying_datagram_as_an_error_and_forwards_nothing() -> None:
    a, _ = _pair()
    assert a.receive_rtp(_rtp(0), A, 1.0) is not None
    for bad in (_two(_rtp(2), _rtp(1))[:-3], bytes([3 << 5, 200, 1, 1]) + bytes(40), b"\x00"):
        assert a.rtp_from_peer(bad, 1.1) is None
        assert a.unpacked_to is None
    assert (a.rtp.errors, a.rtp.packets, a.packed_datagrams) == (3, 1, 0)


def test_single_packets_without_packed_ones_pay_no_filter() -> None:
    a, _ = _pair()
    a.receive_rtp(_rtp(0), A, 1.0)
    assert a.rtp_from_peer(_rtp(0), 1.02) == B  # a network duplicate: forwarded as before
    assert a.seen is None and a.duplicates == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(0, 40), min_size=1, max_size=3),
            st.integers(0, 60),
            st.one_of(st.none(), st.tuples(st.integers(0, 300), st.integers(0, 255))),
        ),
        max_size=25,
    )
)
def test_leg_forwards_no_sequence_twice_whatever_the_datagrams(
    datagrams: list[tuple[list[int], int, tuple[int, int] | None]],
) -> None:
    """Packed datagrams of any sequences, some truncated or with a byte changed: no exception,
    no sequence number forwarded twice, every packet counted once."""
    a, _ = _pair()
    forwarded: list[int] = []
    filtered: list[tuple[int, int]] = []  # (ssrc, sequence) relayed once the filter was on
    for i, (sequences, cut, corruption) in enumerate(datagrams):
        packets = [_rtp(seq) for seq in sequences]
        data = (
            packets[0]
            if len(packets) == 1
            else _two(*packets)
            if len(packets) == 2
            else _three(*packets)
        )
        mutable = bytearray(data[: len(data) - cut] if cut < len(data) else data)
        if corruption is not None and corruption[0] < len(mutable):
            mutable[corruption[0]] = corruption[1]
        was_on = a.seen is not None
        destination = a.receive_rtp(bytes(mutable), A, 1.0 + i * 0.02)
        out: list[bytes] = []
        if destination is not None:
            out = [bytes(mutable)]
        elif a.unpacked_to is not None:
            out = list(a.unpacked)
            a.unpacked_to = None
        for packet in out:
            _pt, sequence, _ts, ssrc = peek_header(packet)  # the relay reads no further
            forwarded.append(sequence)
            if was_on or destination is None:  # filtered: after, or out of, a packed one
                filtered.append((ssrc, sequence))
    assert a.rtp.packets == len(forwarded)
    # One stream whose numbers stay within the window: nothing is relayed twice. (A corrupted
    # SSRC or a far jump restarts the filter, as a restarted sender must.)
    if all(ssrc == 0xA and seq <= 40 for ssrc, seq in filtered):
        assert len(filtered) == len(set(filtered))


def test_a_phone_sending_only_packed_datagrams_latches_by_their_ssrc() -> None:
    a, _ = _pair()
    assert a.receive_rtp(_two(_rtp(6), _rtp(5)), A, 1.0) is None
    assert a.rtp_peer == A and a.unpacked == [_rtp(5), _rtp(6)] and a.unpacked_to == B
    a.unpacked_to = None
    stray = ("203.0.113.66", 9999)
    assert a.receive_rtp(_two(_rtp(8, ssrc=0xBAD), _rtp(7, ssrc=0xBAD)), stray, 1.02) is None
    assert a.unpacked_to is None and a.rtp_peer == A and a.rtp.errors == 1
    moved = ("198.51.100.9", 61000)  # the same phone, on LTE: its SSRC moves the latch
    assert a.receive_rtp(_three(_rtp(9), _rtp(8), _rtp(7)), moved, 1.04) is None
    assert a.rtp_peer == moved and a.unpacked == [_rtp(7), _rtp(8), _rtp(9)]
