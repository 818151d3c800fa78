"""Strict source through real loopback sockets: a leg takes media only from the host its SDP
names (any port), and a new host only once the signalling says so. Strangers send from
127.0.0.2, the phones from 127.0.0.1."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from lwork.media.ng.client import NgClient
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.server import RelayServer
from lwork.media.sdp_min import build_sdp

from fakes.rtp_peer import RtpPeer, eventually

HOST, STRANGER = "127.0.0.1", "127.0.0.2"
IDLE_S = 0.2


@pytest.fixture(params=[True, False], ids=["connected", "shared"])
async def ng(request: pytest.FixtureRequest) -> AsyncIterator[NgClient]:
    config = RelayConfig(
        ng_port=0,
        port_min=24200,
        port_max=24299,
        relatch_idle_s=IDLE_S,
        connected_peers=request.param,
    )
    async with (
        RelayServer(config) as relay,
        NgClient(*relay.ng_address, timeout_s=2.0, sdp_flags=("strict source",)) as client,
    ):
        yield client


@pytest.fixture
async def phones() -> AsyncIterator[tuple[RtpPeer, RtpPeer, RtpPeer]]:
    """Caller, callee (both on HOST) and a stranger on another host."""
    peers = [await RtpPeer.open(), await RtpPeer.open(), await RtpPeer.open(STRANGER)]
    yield peers[0], peers[1], peers[2]
    for peer in peers:
        peer.close()


def rtp(seq: int, ssrc: int) -> RtpPacket:
    return RtpPacket(102, seq, seq * 160, ssrc, bytes(32))


async def call(
    ng: NgClient, caller: RtpPeer, callee: RtpPeer, sdp_port: int = 0
) -> tuple[int, int]:
    """(relay port the caller sends to, relay port the callee sends to)."""
    offer = await ng.offer("c", "caller", build_sdp(HOST, sdp_port or caller.port))
    answer = await ng.answer("c", "caller", "callee", build_sdp(HOST, callee.port))
    return answer.media.port, offer.media.port


async def test_a_strangers_first_packet_does_not_take_the_callers_leg(
    ng: NgClient, phones: tuple[RtpPeer, RtpPeer, RtpPeer]
) -> None:
    caller, callee, stranger = phones
    to_caller_leg, to_callee_leg = await call(ng, caller, callee)
    for seq in range(5):  # before the caller says anything, and for longer than IDLE_S
        stranger.send_rtp(rtp(seq, 0x5), (HOST, to_caller_leg))
        await asyncio.sleep(IDLE_S / 2)
    callee.send_rtp(rtp(1, 0xB), (HOST, to_callee_leg))
    # The callee's voice goes to the caller's SDP address, never to the stranger.
    assert len(await caller.wait_rtp(1)) == 1
    assert callee.rtp_in == [] and stranger.rtp_in == []
    caller.send_rtp(rtp(1, 0xA), (HOST, to_caller_leg))
    assert [RtpPacket.parse(r.data).ssrc for r in await callee.wait_rtp(1)] == [0xA]
    stats = (await ng.query("c")).legs["caller"]
    assert stats.rtp is not None and stats.rtp.endpoint == (HOST, caller.port)
    assert stats.rtp.errors == 5


async def test_the_phone_latches_from_another_port_of_its_own_host(
    ng: NgClient, phones: tuple[RtpPeer, RtpPeer, RtpPeer]
) -> None:
    """NAT gives the phone another port than the one its app announced: same host, accepted;
    later the NAT binding moves to yet another port: accepted under the idle rule."""
    caller, callee, stranger = phones
    to_caller_leg, to_callee_leg = await call(ng, caller, callee, sdp_port=4000)
    caller.send_rtp(rtp(1, 0xA), (HOST, to_caller_leg))
    assert len(await callee.wait_rtp(1)) == 1
    callee.send_rtp(rtp(1, 0xB), (HOST, to_callee_leg))
    assert len(await caller.wait_rtp(1)) == 1
    rebound = await RtpPeer.open()
    try:
        rebound.send_rtp(rtp(2, 0xA), (HOST, to_caller_leg))  # known SSRC: a NAT rebinding
        assert len(await callee.wait_rtp(2)) == 2
        callee.send_rtp(rtp(2, 0xB), (HOST, to_callee_leg))
        assert len(await rebound.wait_rtp(1)) == 1
    finally:
        rebound.close()
    stranger.send_rtp(rtp(3, 0xA), (HOST, to_caller_leg))  # even replaying the phone's SSRC
    await asyncio.sleep(IDLE_S * 2)
    stranger.send_rtp(rtp(4, 0xA), (HOST, to_caller_leg))  # ...and after it fell silent
    callee.send_rtp(rtp(3, 0xB), (HOST, to_callee_leg))
    await asyncio.sleep(0.1)
    assert stranger.rtp_in == [] and len(callee.rtp_in) == 2


async def test_a_new_host_takes_the_leg_only_once_the_signalling_names_it(
    ng: NgClient, phones: tuple[RtpPeer, RtpPeer, RtpPeer]
) -> None:
    caller, callee, _ = phones
    to_caller_leg, to_callee_leg = await call(ng, caller, callee)
    caller.send_rtp(rtp(1, 0xA), (HOST, to_caller_leg))
    assert len(await callee.wait_rtp(1)) == 1
    moved = await RtpPeer.open(STRANGER)  # the caller's phone, now on another network
    try:
        moved.send_rtp(rtp(2, 0xA), (HOST, to_caller_leg))
        await asyncio.sleep(IDLE_S * 2)
        moved.send_rtp(rtp(3, 0xA), (HOST, to_caller_leg))
        await asyncio.sleep(0.1)
        assert len(callee.rtp_in) == 1  # not before the signalling knows the new host
        # The app's next authenticated request came from the new address: a new offer says so.
        await ng.offer("c", "caller", build_sdp(STRANGER, moved.port))
        caller.send_rtp(rtp(4, 0xA), (HOST, to_caller_leg))  # the old host is out at once
        await asyncio.sleep(0.1)
        assert len(callee.rtp_in) == 1
        moved.send_rtp(rtp(5, 0xA), (HOST, to_caller_leg))
        assert len(await callee.wait_rtp(2)) == 2
        callee.send_rtp(rtp(1, 0xB), (HOST, to_callee_leg))
        assert len(await moved.wait_rtp(1)) == 1
        caller.send_rtp(rtp(6, 0xA), (HOST, to_caller_leg))
        await asyncio.sleep(0.1)
        assert len(callee.rtp_in) == 2
        stats = (await ng.query("c")).legs["caller"]
        assert stats.rtp is not None and stats.rtp.endpoint == (STRANGER, moved.port)
    finally:
        moved.close()


async def test_without_the_flag_the_leg_latches_onto_the_first_sender(
    phones: tuple[RtpPeer, RtpPeer, RtpPeer],
) -> None:
    """rtpengine's default (learning) stays available: `strict source` is what changes it."""
    caller, callee, stranger = phones
    config = RelayConfig(ng_port=0, port_min=24300, port_max=24399)
    async with RelayServer(config) as relay, NgClient(*relay.ng_address) as ng:
        to_caller_leg, to_callee_leg = await call(ng, caller, callee)
        stranger.send_rtp(rtp(1, 0x5), (HOST, to_caller_leg))
        assert await eventually(lambda: len(callee.rtp_in) == 1)
        callee.send_rtp(rtp(1, 0xB), (HOST, to_callee_leg))
        assert len(await stranger.wait_rtp(1)) == 1
