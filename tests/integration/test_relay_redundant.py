"""The original apps' redundant datagrams (original-behavior.md §8) through the built-in relay
and real UDP sockets: packed by hand, byte by byte, they reach the other party as single
packets, each original once, and the statistics count each once."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from lwork.media.ng.client import NgClient
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.server import RelayServer

from fakes.relay_fixtures import ng_fixture, peers_fixture, start_call  # noqa: F401
from fakes.rtp_peer import RtpPeer, eventually

HOST = "127.0.0.1"
AMR_12_2 = bytes([0xF0, 0x3C]) + bytes(range(31))  # CMR 15, TOC mode 7 (12.2), 31 bytes


@pytest.fixture(params=[True, False], ids=["connected", "shared-socket"])
async def relay(request: pytest.FixtureRequest) -> AsyncIterator[RelayServer]:
    config = RelayConfig(ng_port=0, port_min=23400, port_max=23599, connected_peers=request.param)
    async with RelayServer(config) as server:
        yield server


def _amr(seq: int) -> bytes:
    return bytes(RtpPacket(102, seq, seq * 160, 0xA11CE, AMR_12_2, marker=seq == 0))


def _packed(seq: int) -> bytes:
    """What an original app sends for packet `seq`: the newest first, then up to two earlier
    ones, behind their 1-byte lengths (and a count byte when there are three)."""
    packets = [_amr(s) for s in range(seq, max(-1, seq - 3), -1)]
    if len(packets) == 1:
        return packets[0]
    lengths = bytes(len(p) for p in packets)
    head = lengths if len(packets) == 2 else bytes([3 << 5]) + lengths
    return head + b"".join(packets)


async def test_packed_datagrams_arrive_as_single_packets_each_once(
    ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, port_b = await start_call(ng, a, b)
    assert len(_packed(1)) == 2 + 2 * 45 and len(_packed(5)) == 4 + 3 * 45
    for seq in range(40):
        a.send_rtp(_packed(seq), (HOST, port_a))
        await asyncio.sleep(0.002)
    got = await b.wait_rtp(40)
    await asyncio.sleep(0.1)  # anything relayed twice would be here by now
    assert [r.data for r in b.rtp_in] == [_amr(seq) for seq in range(40)]
    assert {r.source for r in got} == {(HOST, port_b)}

    stats = await ng.query("call-1")
    alice = stats.legs["alice"]
    assert alice.rtp is not None and alice.rtp.packets == 40 and alice.rtp.errors == 0
    assert alice.quality is not None
    assert (alice.quality.packets_received, alice.quality.packets_lost) == (40, 0)


async def test_lost_datagrams_are_recovered_from_the_next_ones_and_lies_are_dropped(
    ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, _ = await start_call(ng, a, b)
    lying = _packed(9)
    sent = [s for s in range(12) if s not in (4, 5)]  # two datagrams lost on the way
    for seq in sent:
        a.send_rtp(_packed(seq), (HOST, port_a))
        if seq == 7:
            a.send_rtp(lying[:-1], (HOST, port_a))  # truncated: the lengths lie
            a.send_rtp(bytes([40, 40]) + bytes(80), (HOST, port_a))  # only looks packed
        await asyncio.sleep(0.002)
    await b.wait_rtp(12)
    await asyncio.sleep(0.1)
    # 4 and 5 came again inside 6's and 7's datagrams: nothing is missing, nothing doubled.
    assert sorted(RtpPacket.parse(r.data).sequence for r in b.rtp_in) == list(range(12))
    stats = await ng.query("call-1")
    alice = stats.legs["alice"]
    assert alice.rtp is not None and alice.rtp.errors == 2 and alice.rtp.packets == 12
    assert await eventually(lambda: len(b.rtp_in) == 12)
