"""`Leg.rtp_from_peer`/`rtcp_from_peer` (datagrams from a connected socket) against the full
`receive_rtp`/`receive_rtcp` fed the latched source: the same answers and the same statistics."""

import resource
import struct
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.media.relay import rtcp
from lwork.media.relay.rtp import peek_header
from lwork.media.relay.session import Leg
from lwork.media.relay.stats import StreamReceiver

A = ("192.0.2.1", 4000)
B = ("192.0.2.2", 5000)
_HEADER = struct.Struct("!BBHII")


def _pair() -> tuple[Leg, Leg]:
    a = Leg(tag="a", rtp_port=30000, relay_ssrc=1, created=0.0, advertised=A)
    b = Leg(tag="b", rtp_port=30002, relay_ssrc=2, created=0.0, advertised=B)
    a.other, b.other = b, a
    a.rtp_peer, a.rtcp_peer = A, (A[0], A[1] + 1)
    return a, b


# The interpreted class lists its fields in __slots__, the mypyc-compiled one in __mypyc_attrs__.
_RECEIVER_FIELDS: tuple[str, ...] = getattr(
    StreamReceiver, "__slots__", getattr(StreamReceiver, "__mypyc_attrs__", ())
)
assert _RECEIVER_FIELDS


def _state(leg: Leg) -> tuple[object, ...]:
    receivers = {
        ssrc: tuple(getattr(r, name) for name in _RECEIVER_FIELDS)
        for ssrc, r in leg.receivers.items()
    }
    other = leg.other
    assert other is not None
    return (
        leg.rtp,
        leg.rtcp,
        receivers,
        leg.last_sr,
        leg.remote_view,
        leg.rtt.last_ms,
        leg.relatches,
        other.sent_packets,
        other.sent_octets,
        other.rtt._sent,
    )


_rtp_packets = st.builds(
    lambda first, pt, seq, ts, ssrc, tail: _HEADER.pack(first, pt, seq, ts, ssrc) + tail,
    st.sampled_from([0x80, 0x80, 0x80, 0x81, 0x90, 0x40, 0xA0, 0x8F]),
    st.sampled_from([0, 8, 101, 102, 0x80 | 102]),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF_FFFF),
    st.sampled_from([0xA, 0xA, 0xB]),
    st.binary(max_size=40),
)
_datagrams = _rtp_packets | st.binary(max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_datagrams, st.floats(0, 0.1)), max_size=60))
def test_rtp_from_the_latched_peer_accounts_exactly_like_receive_rtp(
    packets: list[tuple[bytes, float]],
) -> None:
    full, _ = _pair()
    fast, _ = _pair()
    now = 1.0
    for data, gap in packets:
        now += gap
        errors = fast.rtp.errors
        assert fast.rtp_from_peer(data, now) == full.receive_rtp(data, A, now)
        # The inlined header checks reject exactly what the reference parser rejects.
        assert (fast.rtp.errors == errors) == _valid(data)
    assert _state(fast) == _state(full)


def _valid(data: bytes) -> bool:
    try:
        peek_header(data)
    except ValueError:
        return False
    return True


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=12))
def test_rtcp_from_the_latched_peer_accounts_exactly_like_receive_rtcp(kinds: list[int]) -> None:
    full, _ = _pair()
    fast, _ = _pair()
    block = rtcp.ReportBlock(2, 10, 3, 1234, 80, 0, 0)
    datagrams = [
        bytes(rtcp.SenderReport(0xA, rtcp.ntp_from_unix(1e9), 160, 5, 800, (block,))),
        bytes(rtcp.ReceiverReport(0xA, (block,))),
        b"\x81\xc9\x00\xff" + bytes(8),  # a lying length
        bytes(rtcp.SourceDescription(((0xA, ((1, b"phone"),)),))),
    ]
    source = (A[0], A[1] + 1)
    for i, kind in enumerate(kinds):
        now = 1.0 + i * 0.5
        data = datagrams[kind]
        assert fast.rtcp_from_peer(data, now) == full.receive_rtcp(data, source, now)
    assert _state(fast) == _state(full)


def test_the_relay_lifts_its_open_file_limit_to_the_hard_one() -> None:
    # In a child process with a soft limit of 256, so this test process keeps its own.
    code = (
        "import resource\n"
        "from lwork.media.relay.packet_loop import raise_fd_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    reported, actual = (int(v) for v in out.stdout.split())
    expected = hard if hard != resource.RLIM_INFINITY else 1 << 16
    assert reported == actual == max(256, expected)
