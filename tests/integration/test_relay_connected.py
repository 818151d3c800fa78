"""The relay's connected-socket fast path, through real loopback sockets.

Once a leg has latched onto a source, the relay opens a companion socket on the leg's port,
connected to that source; the kernel hands it the source's datagrams. These tests check that
media takes that path and is accounted as before, and that latching rules, cleanup and ICMP
errors still hold with it.
"""

import asyncio
import os
import resource
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from lwork.media.ng.client import NgClient
from lwork.media.relay import rtcp
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.server import RelayServer

from fakes.relay_fixtures import ng_fixture, peers_fixture, start_call  # noqa: F401
from fakes.rtp_peer import RtpPeer, eventually

HOST = "127.0.0.1"


@pytest.fixture
async def relay() -> AsyncIterator[RelayServer]:
    async with RelayServer(RelayConfig(ng_port=0, port_min=25000, port_max=25999)) as server:
        yield server


def _rtp(seq: int, ssrc: int) -> RtpPacket:
    return RtpPacket(102, seq, seq * 160, ssrc, bytes(160))


def _sr(ssrc: int) -> bytes:
    return bytes(rtcp.SenderReport(ssrc, rtcp.ntp_from_unix(1e9), 0, 1, 160))


async def _latch(relay: RelayServer, a: RtpPeer, b: RtpPeer, port_a: int, port_b: int) -> None:
    """One RTP packet each way, then wait until both legs have their RTP companion."""
    a.send_rtp(_rtp(0, 0xA), (HOST, port_a))
    b.send_rtp(_rtp(0, 0xB), (HOST, port_b))
    assert len(await b.wait_rtp(1)) == 1 and len(await a.wait_rtp(1)) == 1
    assert await eventually(
        lambda: (
            relay.connected_peers(port_a)[0] == (HOST, a.port)
            and relay.connected_peers(port_b)[0] == (HOST, b.port)
        ),
        timeout=5,
    )


async def _latched_call(
    relay: RelayServer, ng: NgClient, a: RtpPeer, b: RtpPeer
) -> tuple[int, int]:
    """A call between `a` and `b`, both legs latched with their companions; its ports."""
    port_a, port_b = await start_call(ng, a, b)
    await _latch(relay, a, b, port_a, port_b)
    return port_a, port_b


async def _stream(sender: RtpPeer, port: int, ssrc: int, sequences: range) -> None:
    for seq in sequences:
        sender.send_rtp(_rtp(seq, ssrc), (HOST, port))
        await asyncio.sleep(0.002)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_latched_media_takes_the_connected_path_both_ways_with_the_same_stats(
    relay: RelayServer, ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, port_b = await _latched_call(relay, ng, a, b)
    await _stream(a, port_a, 0xA, range(1, 31))
    await _stream(b, port_b, 0xB, range(1, 31))
    got_b, got_a = await b.wait_rtp(31), await a.wait_rtp(31)
    assert [RtpPacket.parse(r.data).sequence for r in got_b] == list(range(31))
    assert [RtpPacket.parse(r.data).sequence for r in got_a] == list(range(31))
    assert {r.source for r in got_b} == {(HOST, port_b)}  # still symmetric: the leg's own port
    assert {r.source for r in got_a} == {(HOST, port_a)}
    assert relay.fast_path_packets(port_a) == 30 and relay.fast_path_packets(port_b) == 30

    a.send_rtcp(_sr(0xA), (HOST, port_a + 1))
    assert await eventually(lambda: relay.connected_peers(port_a)[1] == (HOST, a.port + 1))
    a.send_rtcp(_sr(0xA), (HOST, port_a + 1))
    # b may also get the relay's own reports: count only the forwarded ones.
    assert await eventually(lambda: [r.data for r in b.rtcp_in].count(_sr(0xA)) == 2)
    assert {r.source for r in b.rtcp_in} == {(HOST, port_b + 1)}
    assert relay.fast_path_packets(port_a) == 31

    stats = await ng.query("call-1")
    alice, bob = stats.legs["alice"], stats.legs["bob"]
    assert alice.rtp is not None and (alice.rtp.packets, alice.rtp.bytes) == (31, 31 * 172)
    assert alice.rtp.endpoint == (HOST, a.port) and alice.rtp.errors == 0
    assert alice.rtcp is not None and alice.rtcp.packets == 2
    assert alice.quality is not None and alice.quality.ssrc == 0xA
    assert (alice.quality.packets_received, alice.quality.packets_lost) == (31, 0)
    assert bob.quality is not None and bob.quality.packets_received == 31


async def _stream_until(sender: RtpPeer, port: int, ssrc: int, done: Callable[[], bool]) -> int:
    """Send a 50 pps stream until `done()`; return the next sequence number."""
    seq = 1
    deadline = asyncio.get_running_loop().time() + 5
    while not done() and asyncio.get_running_loop().time() < deadline:
        sender.send_rtp(_rtp(seq, ssrc), (HOST, port))
        seq += 1
        await asyncio.sleep(0.02)
    assert done()
    return seq


async def test_a_phone_moving_networks_gets_a_new_companion_and_audio_both_ways(
    relay: RelayServer, ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, port_b = await _latched_call(relay, ng, a, b)
    a.send_rtcp(_sr(0xA), (HOST, port_a + 1))
    assert await eventually(lambda: relay.connected_peers(port_a)[1] == (HOST, a.port + 1))
    moved = await RtpPeer.open()  # the same phone (same SSRC) from a new address
    try:
        # The RTP companion follows the phone (at most one new companion a second per port);
        # the RTCP one is dropped and waits for the phone's RTCP from its new address.
        seq = await _stream_until(
            moved, port_a, 0xA, lambda: relay.connected_peers(port_a)[0] == (HOST, moved.port)
        )
        assert relay.connected_peers(port_a)[1] is None
        await _stream(moved, port_a, 0xA, range(seq, seq + 10))
        await _stream(b, port_b, 0xB, range(1, 11))
        assert len(await b.wait_rtp(seq + 10)) == seq + 10
        got = await moved.wait_rtp(10)
        assert [RtpPacket.parse(r.data).sequence for r in got] == list(range(1, 11))
        assert len(a.rtp_in) == 1  # nothing after the move went to the old address
        assert relay.fast_path_packets(port_a) == 10
        alice = (await ng.query("call-1")).legs["alice"]
        assert alice.rtp is not None and alice.rtp.endpoint == (HOST, moved.port)
        assert alice.quality is not None and alice.quality.packets_lost == 0
    finally:
        moved.close()


async def test_a_flapping_latch_waits_on_the_shared_socket_instead_of_churning_sockets(
    relay: RelayServer, ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, port_b = await _latched_call(relay, ng, a, b)
    other = await RtpPeer.open()  # the same SSRC from two addresses in turn
    try:
        for seq in range(1, 21):
            (other if seq % 2 else a).send_rtp(_rtp(seq, 0xA), (HOST, port_a))
            await asyncio.sleep(0.002)
        assert len(await b.wait_rtp(21)) == 21  # every packet still relayed
        assert relay.connected_peers(port_a)[0] is None
        assert relay.table.calls["call-1"].caller.relatches == 20
        alice = (await ng.query("call-1")).legs["alice"]
        assert alice.rtp is not None and alice.rtp.endpoint == (HOST, a.port)
        # Once the latch holds still, the companion comes back.
        await _stream_until(
            a, port_a, 0xA, lambda: relay.connected_peers(port_a)[0] == (HOST, a.port)
        )
    finally:
        other.close()


async def test_a_stray_sender_is_dropped_and_counted_while_the_peer_stays_connected(
    relay: RelayServer, ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, port_b = await _latched_call(relay, ng, a, b)
    stray = await RtpPeer.open()
    try:
        stray.send_rtp(_rtp(9, 0x5), (HOST, port_a))  # a stranger, while the phone talks
        a.send_rtp(_rtp(1, 0xA), (HOST, port_a))
        got = await b.wait_rtp(2)
        await asyncio.sleep(0.05)
        assert [RtpPacket.parse(r.data).ssrc for r in b.rtp_in] == [0xA, 0xA]
        assert len(got) == 2
        assert relay.connected_peers(port_a)[0] == (HOST, a.port)
        alice = (await ng.query("call-1")).legs["alice"]
        assert alice.rtp is not None and alice.rtp.errors == 1
        assert alice.rtp.endpoint == (HOST, a.port)
    finally:
        stray.close()


async def test_a_stray_flood_on_a_latched_port_is_muted_while_the_phone_talks_on(
    relay: RelayServer,
    ng: NgClient,
    peers: tuple[RtpPeer, RtpPeer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = peers
    port_a, port_b = await _latched_call(relay, ng, a, b)
    stray = await RtpPeer.open()
    try:
        for seq in range(5000):  # a stranger floods the port the phone talks to
            stray.send_rtp(_rtp(seq, 0x5), (HOST, port_a))
            if seq % 100 == 0:
                a.send_rtp(_rtp(1 + seq // 100, 0xA), (HOST, port_a))
                await asyncio.sleep(0.001)  # the relay shares this loop
        assert len(await b.wait_rtp(1 + 50)) == 51  # every packet of the phone's
        assert {RtpPacket.parse(r.data).ssrc for r in b.rtp_in} == {0xA}
        alice = (await ng.query("call-1")).legs["alice"]
        assert alice.rtp is not None and alice.rtp.endpoint == (HOST, a.port)
        # The relay read a second's budget of strays and left the rest to the kernel.
        assert 200 <= alice.rtp.errors < 1500, alice.rtp.errors
        assert "flooded shared sockets muted" in caplog.text
        assert relay.connected_peers(port_a)[0] == (HOST, a.port)
        # Once the flood stops, the shared socket is read again: a handover still works.
        moved = await RtpPeer.open()
        try:

            def moved_over() -> bool:  # the phone keeps talking from its new address
                moved.send_rtp(_rtp(100, 0xA), (HOST, port_a))
                return relay.connected_peers(port_a)[0] == (HOST, moved.port)

            assert await eventually(moved_over, timeout=5)
        finally:
            moved.close()
    finally:
        stray.close()


async def test_delete_closes_the_companions_too(
    relay: RelayServer, ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    before = _open_fds()
    port_a, port_b = await start_call(ng, a, b)
    assert _open_fds() == before + 4  # two legs, RTP + RTCP each
    await _latch(relay, a, b, port_a, port_b)
    a.send_rtcp(_sr(0xA), (HOST, port_a + 1))
    b.send_rtcp(_sr(0xB), (HOST, port_b + 1))
    assert await eventually(
        lambda: None not in relay.connected_peers(port_a) + relay.connected_peers(port_b)
    )
    assert _open_fds() == before + 8
    await ng.delete("call-1")
    assert _open_fds() == before
    assert relay.connected_peers(port_a) == (None, None)
    for port in (port_a, port_a + 1, port_b, port_b + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, port))  # would raise if any socket still held the port


async def test_an_icmp_error_from_a_vanished_peer_is_counted_and_the_loop_goes_on(
    relay: RelayServer, ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, port_b = await _latched_call(relay, ng, a, b)
    b.close()  # the callee's phone is gone: its port answers with ICMP port unreachable
    await _stream(a, port_a, 0xA, range(1, 11))

    async def errors() -> int:
        legs = (await ng.query("call-1")).legs
        return sum(leg.rtp.errors for leg in legs.values() if leg.rtp is not None)

    deadline = asyncio.get_running_loop().time() + 5
    while await errors() == 0 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    assert await errors() >= 1
    alice = (await ng.query("call-1")).legs["alice"]
    assert alice.rtp is not None and alice.rtp.packets == 11  # every packet was still read

    c, d = await RtpPeer.open(), await RtpPeer.open()
    try:
        port_c, port_d = await start_call(ng, c, d, "call-2")
        await _latch(relay, c, d, port_c, port_d)
        await _stream(c, port_c, 0xC, range(1, 6))
        assert len(await d.wait_rtp(6)) == 6
    finally:
        c.close()
        d.close()


async def test_without_connected_peers_media_flows_on_the_shared_sockets(
    peers: tuple[RtpPeer, RtpPeer],
) -> None:
    a, b = peers
    config = RelayConfig(ng_port=0, port_min=25000, port_max=25999, connected_peers=False)
    async with RelayServer(config) as relay, NgClient(*relay.ng_address) as ng:
        port_a, port_b = await start_call(ng, a, b)
        await _stream(a, port_a, 0xA, range(10))
        await _stream(b, port_b, 0xB, range(10))
        assert len(await b.wait_rtp(10)) == 10 and len(await a.wait_rtp(10)) == 10
        assert relay.connected_peers(port_a) == relay.connected_peers(port_b) == (None, None)
        alice = (await ng.query("call-1")).legs["alice"]
        assert alice.rtp is not None and alice.rtp.packets == 10


async def test_no_descriptor_left_for_a_companion_falls_back_to_the_shared_socket(
    relay: RelayServer, ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, port_b = await start_call(ng, a, b)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Descriptors are allocated lowest first: a limit at the first free one refuses the next.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        first_free = probe.fileno()
    resource.setrlimit(resource.RLIMIT_NOFILE, (first_free, hard))
    try:
        await _stream(a, port_a, 0xA, range(10))
        await _stream(b, port_b, 0xB, range(10))
        assert len(await b.wait_rtp(10)) == 10 and len(await a.wait_rtp(10)) == 10
        assert relay.connected_peers(port_a) == relay.connected_peers(port_b) == (None, None)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    alice = (await ng.query("call-1")).legs["alice"]
    assert alice.rtp is not None and (alice.rtp.packets, alice.rtp.errors) == (10, 0)


def test_datagrams_still_queued_for_the_old_latch_are_counted_at_a_relatch() -> None:
    """Ports driven by hand (no event loop), so datagrams can wait in the old companion: the
    phone moves while three of its packets from the old address are unread. They must neither
    move the latch back nor vanish: dropped and counted on the leg."""
    from lwork.media.relay.packet_loop import PacketLoop
    from lwork.media.relay.packet_ports import Port
    from lwork.media.relay.session import Leg

    def udp() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, 0))
        sock.setblocking(False)
        return sock

    loop = PacketLoop(connect_peers=True)
    here, there, old_address, new_address = udp(), udp(), udp(), udp()
    with here, there, old_address, new_address:
        a, b = Port(here, False, loop), Port(there, False, loop)
        leg_a = Leg(tag="a", rtp_port=here.getsockname()[1], relay_ssrc=1, created=0.0)
        leg_b = Leg(tag="b", rtp_port=there.getsockname()[1], relay_ssrc=2, created=0.0)
        leg_a.other, leg_b.other = leg_b, leg_a
        a.attach(leg_a, b)
        b.attach(leg_b, a)
        old_address.sendto(bytes(_rtp(1, 0x77)), here.getsockname())
        assert a.relay(8) == 1 and a.companion is not None  # latched, companion connected
        for seq in (2, 3, 4):  # queued in the companion; the loop is not running
            old_address.sendto(bytes(_rtp(seq, 0x77)), here.getsockname())
        new_address.sendto(bytes(_rtp(5, 0x77)), here.getsockname())  # same SSRC: handover
        assert a.relay(8) == 1
        assert leg_a.rtp_peer == new_address.getsockname()
        assert (leg_a.rtp.packets, leg_a.rtp.errors) == (2, 3)
        a.detach()
        b.detach()
    loop.epoll.close()
