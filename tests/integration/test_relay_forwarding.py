"""The built-in relay through real loopback sockets, driven by lwork's own ng client."""

import asyncio
import re
import socket
from collections.abc import AsyncIterator

import pytest

from lwork.media.ng.client import NgClient, NgError, call_status_stats
from lwork.media.relay import rtcp
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.dtmf import TelephoneEvent
from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.server import RelayServer, serve_relay
from lwork.media.sdp_min import build_sdp

from fakes.relay_fixtures import ng_fixture, peers_fixture, start_call  # noqa: F401
from fakes.rtp_peer import RtpPeer, eventually

HOST = "127.0.0.1"


def _config(**overrides: object) -> RelayConfig:
    base: dict[str, object] = {"ng_port": 0, "port_min": 23000, "port_max": 23999}
    base.update(overrides)
    return RelayConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
async def relay() -> AsyncIterator[RelayServer]:
    async with RelayServer(_config()) as server:
        yield server


def _rtp(seq: int, ssrc: int, pt: int = 102) -> RtpPacket:
    return RtpPacket(pt, seq, seq * 160, ssrc, bytes(160))


async def test_forwards_rtp_and_rtcp_both_ways(
    ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, port_b = await start_call(ng, a, b)
    assert port_a % 2 == 0 and port_b % 2 == 0 and port_a != port_b
    for seq in range(30):
        a.send_rtp(_rtp(seq, 0xA), (HOST, port_a))
        b.send_rtp(_rtp(seq, 0xB), (HOST, port_b))
        await asyncio.sleep(0.002)
    got_b = await b.wait_rtp(30)
    got_a = await a.wait_rtp(30)
    assert [RtpPacket.parse(r.data).sequence for r in got_b] == list(range(30))
    assert {r.source for r in got_b} == {(HOST, port_b)}  # symmetric: from the port B uses
    assert {r.source for r in got_a} == {(HOST, port_a)}
    assert got_b[0].data == bytes(_rtp(0, 0xA))
    sr = bytes(rtcp.SenderReport(0xA, rtcp.ntp_from_unix(1e9), 0, 30, 4800))
    a.send_rtcp(sr, (HOST, port_a + 1))
    # the relay's own reports may reach B first: wait for the forwarded one
    assert await eventually(lambda: any(r.data == sr for r in b.rtcp_in))

    stats = await ng.query("call-1")
    alice, bob = stats.legs["alice"], stats.legs["bob"]
    assert alice.in_dialogue_with == "bob"
    assert alice.rtp is not None and alice.rtp.local_port == port_a
    assert alice.rtp.endpoint == (HOST, a.port) and alice.rtp.confirmed
    assert alice.rtp.packets == 30 and alice.rtp.bytes == 30 * 172
    assert alice.quality is not None and alice.quality.ssrc == 0xA
    assert (alice.quality.packets_received, alice.quality.packets_lost) == (30, 0)
    assert bob.quality is not None and bob.quality.packets_received == 30
    assert stats.rtp_packets == 60 and stats.rtcp_packets == 1
    assert stats.ssrcs[0xA].packets == 30 and stats.ssrcs[0xA].tag == "alice"
    summary = call_status_stats(alice)
    assert (summary["ip"], summary["pr"], summary["pl"], summary["lostrate"]) == (HOST, 30, 0, 0)
    assert 1 <= float(summary["mos"]) <= 4.5 and summary["total_eval"]
    assert await ng.list() == ["call-1"]


async def test_phone_moving_networks_keeps_its_audio(
    ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, port_b = await start_call(ng, a, b)
    a.send_rtp(_rtp(1, 0xA), (HOST, port_a))
    await b.wait_rtp(1)
    moved = await RtpPeer.open()  # same phone, new address (Wi-Fi -> LTE)
    try:
        moved.send_rtp(_rtp(2, 0xA), (HOST, port_a))
        assert len(await b.wait_rtp(2)) == 2
        b.send_rtp(_rtp(1, 0xB), (HOST, port_b))
        assert len(await moved.wait_rtp(1)) == 1  # return audio follows the phone
        stray = await RtpPeer.open()
        try:
            stray.send_rtp(_rtp(9, 0x5), (HOST, port_a))  # a stranger, while the phone talks
            moved.send_rtp(_rtp(3, 0xA), (HOST, port_a))
            got = await b.wait_rtp(3)
            assert [RtpPacket.parse(r.data).ssrc for r in got] == [0xA, 0xA, 0xA]
        finally:
            stray.close()
        stats = await ng.query("call-1")
        alice = stats.legs["alice"]
        assert alice.rtp is not None and alice.rtp.endpoint == (HOST, moved.port)
        assert alice.rtp.errors == 1
        assert alice.quality is not None and alice.quality.packets_lost == 0
    finally:
        moved.close()


async def test_delete_frees_ports_and_forgets_the_call(
    ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, port_b = await start_call(ng, a, b)
    final = await ng.delete("call-1", "alice")
    assert final is not None and set(final.legs) == {"alice", "bob"}
    for port in (port_a, port_a + 1, port_b, port_b + 1):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((HOST, port))  # would raise if the relay still held it
        probe.close()
    with pytest.raises(NgError, match="Unknown call-id"):
        await ng.query("call-1")
    assert await ng.delete("call-1") is None
    assert await ng.list() == []


async def test_a_flooding_phone_is_cut_to_its_rate_and_the_other_call_goes_on(
    peers: tuple[RtpPeer, RtpPeer], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = peers
    c, d = await RtpPeer.open(), await RtpPeer.open()
    try:
        async with (
            RelayServer(_config(max_leg_pps=200)) as relay,
            NgClient(*relay.ng_address) as ng,
        ):
            port_a, _ = await start_call(ng, a, b)
            port_c, _ = await start_call(ng, c, d, "call-2")
            for seq in range(3000):  # as fast as the socket takes them
                a.send_rtp(_rtp(seq, 0xA), (HOST, port_a))
                if seq % 100 == 0:
                    c.send_rtp(_rtp(seq // 100, 0xC), (HOST, port_c))
                if seq % 20 == 0:
                    await asyncio.sleep(0)  # the relay shares this loop: let it read
            assert len(await d.wait_rtp(30)) == 30  # the other call: every packet
            seen, rtp = -1, None
            for _ in range(50):  # until the relay has read all it will read
                rtp = (await ng.query("call-1")).legs["alice"].rtp
                assert rtp is not None
                if rtp.packets + rtp.errors == seen:
                    break
                seen = rtp.packets + rtp.errors
                await asyncio.sleep(0.1)
            assert rtp is not None
            assert 200 <= rtp.packets <= 400  # a second's worth, plus the refill meanwhile
            assert rtp.errors >= 2000 and rtp.packets + rtp.errors <= 3000
            await b.wait_rtp(rtp.packets + 1, timeout=0.5)
            assert len(b.rtp_in) == rtp.packets  # only what passed went on to B

            # the operator hears of it (the sweep looks at each call about once a second)
            def noted() -> int:  # a sweep in mid-flood notes it in two lines
                pattern = r"call-1 leg alice: (\d+) packets over max_leg_pps \(200/s\) dropped"
                return sum(int(n) for n in re.findall(pattern, caplog.text))

            assert await eventually(lambda: noted() == rtp.errors, 5)
            assert "call-2" not in caplog.text
    finally:
        c.close()
        d.close()


async def test_port_exhaustion_is_a_clean_error() -> None:
    async with RelayServer(_config(port_min=23900, port_max=23903)) as relay:
        async with NgClient(*relay.ng_address) as ng:
            await ng.offer("one", "a", build_sdp(HOST, 4000))
            with pytest.raises(NgError, match="no free RTP/RTCP port pair"):
                await ng.offer("two", "a", build_sdp(HOST, 4000))
            assert await ng.ping()
            await ng.delete("one")
            await ng.offer("three", "a", build_sdp(HOST, 4000))


async def test_media_timeout_deletes_silent_calls(peers: tuple[RtpPeer, RtpPeer]) -> None:
    a, b = peers
    config = _config(media_timeout_s=0.3, tick_s=0.02)
    async with RelayServer(config) as relay, NgClient(*relay.ng_address) as ng:
        port_a, _ = await start_call(ng, a, b)
        a.send_rtp(_rtp(1, 0xA), (HOST, port_a))
        await b.wait_rtp(1)
        assert "call-1" in relay.table.calls
        assert await eventually(lambda: "call-1" not in relay.table.calls, timeout=10)
        stats = await ng.statistics()
        assert stats["totalstatistics"]["timeoutsessions"] == 1


async def test_bad_input_is_counted_and_dropped(
    relay: RelayServer, ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, _ = await start_call(ng, a, b)
    control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    control.setblocking(False)
    try:
        for junk in (b"", b"garbage", b"c1 " + b"l" * 5000, b"c2 d7:command", b"c3 i1e"):
            control.sendto(junk, relay.ng_address)
        for junk in (b"", b"\x80", b"\xff" * 11, bytes(200)):
            a.send_rtp(junk, (HOST, port_a))
            a.send_rtcp(junk, (HOST, port_a + 1))
        a.send_rtcp(bytes.fromhex("81c900ff") + bytes(8), (HOST, port_a + 1))  # lying length
        a.send_rtp(_rtp(1, 0xA), (HOST, port_a))
        got = await b.wait_rtp(1)
        assert [RtpPacket.parse(r.data).sequence for r in got] == [1]
        assert await ng.ping()
        stats = await ng.query("call-1")
        alice = stats.legs["alice"]
        assert alice.rtp is not None and alice.rtp.errors == 4
        assert alice.rtcp is not None and alice.rtcp.errors == 5
        counters = (await ng.statistics())["controlstatistics"]
        assert counters["malformedcount"] == 5
        with pytest.raises(NgError, match="Unknown call-id"):
            await ng.query("no-such-call")
    finally:
        control.close()


async def test_play_dtmf_sends_rfc4733_events_to_the_other_party(
    ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    _, port_b = await start_call(ng, a, b)
    await ng.play_dtmf("call-1", "alice", "7", duration_ms=100)
    got = await b.wait_rtp(7)
    packets = [RtpPacket.parse(r.data) for r in got]
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert {r.source for r in got} == {(HOST, port_b)}
    assert {p.payload_type for p in packets} == {101}
    assert len({p.timestamp for p in packets}) == 1
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert [(p.sequence - packets[0].sequence) & 0xFFFF for p in packets] == list(range(7))
    assert [e.event for e in events] == [7] * 7
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert events[-1].duration == 800
    assert a.rtp_in == []  # nothing went back to the generating party


async def test_received_telephone_events_are_relayed(
    ng: NgClient, peers: tuple[RtpPeer, RtpPeer]
) -> None:
    a, b = peers
    port_a, _ = await start_call(ng, a, b)
    event = RtpPacket(101, 5, 800, 0xA, bytes(TelephoneEvent(3, True, 10, 400)), marker=True)
    a.send_rtp(_rtp(4, 0xA), (HOST, port_a))
    a.send_rtp(event, (HOST, port_a))
    got = await b.wait_rtp(2)
    assert got[1].data == bytes(event)


async def test_serve_relay_signals_ready_and_stops_on_cancel() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        ng_port = probe.getsockname()[1]
    ready = asyncio.Event()
    task = asyncio.create_task(serve_relay(_config(ng_port=ng_port), ready=ready))
    await asyncio.wait_for(ready.wait(), timeout=10)
    async with NgClient(HOST, ng_port) as ng:
        assert await ng.ping()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind((HOST, ng_port))  # the control socket was released
