"""lwork's flows behave alike on the built-in relay and on rtpengine (userspace, loopback).

rtpengine computes no jitter/RTT from RTP itself, so forwarding, ports and the `query` shape
are compared, not quality values.
"""

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator

import pytest

from lwork.media.ng.client import NgClient, NgError
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.server import RelayServer
from lwork.media.sdp_min import build_sdp

from fakes.rtp_peer import RtpPeer

HOST = "127.0.0.1"
RANGES = {"builtin": (23000, 23999), "rtpengine": (24000, 24999)}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def _rtpengine() -> AsyncIterator[tuple[str, int]]:
    binary = shutil.which("rtpengine")
    if binary is None:
        pytest.skip("rtpengine-daemon not installed: apt-get install rtpengine-daemon")
    port = _free_udp_port()
    low, high = RANGES["rtpengine"]
    process = await asyncio.create_subprocess_exec(
        binary,
        "--config-file=none",  # Debian's config fixes CLI/HTTP ports a second daemon would clash on
        "--foreground",
        "--log-stderr",
        "--table=-1",
        "--interface=127.0.0.1",
        f"--listen-ng={HOST}:{port}",
        f"--port-min={low}",
        f"--port-max={high}",
        "--delete-delay=0",
        "--log-level=3",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with NgClient(HOST, port, timeout_s=0.2, retries=25) as probe:
            await probe.ping()  # retries until the daemon listens
        yield (HOST, port)
    finally:
        process.terminate()
        await process.wait()


@contextlib.asynccontextmanager
async def _builtin() -> AsyncIterator[tuple[str, int]]:
    low, high = RANGES["builtin"]
    async with RelayServer(RelayConfig(ng_port=0, port_min=low, port_max=high)) as relay:
        yield relay.ng_address


@pytest.fixture(params=["builtin", "rtpengine"])
async def relay(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, tuple[str, int]]]:
    factory = _builtin if request.param == "builtin" else _rtpengine
    async with factory() as address:
        yield request.param, address


async def test_offer_answer_forward_query_delete_alike(
    relay: tuple[str, tuple[str, int]],
) -> None:
    kind, address = relay
    low, high = RANGES[kind]
    a, b = await RtpPeer.open(), await RtpPeer.open()
    try:
        async with NgClient(*address) as ng:
            offer = await ng.offer("parity", "alice", build_sdp(HOST, a.port))
            callee_port = offer.media.port
            caller_addr = await ng.relay_address("parity", "alice")
            assert offer.media.ip == HOST and caller_addr[0] == HOST
            for port in (callee_port, caller_addr[1]):
                assert port % 2 == 0 and low <= port <= high
            answer = await ng.answer("parity", "alice", "bob", build_sdp(HOST, b.port))
            assert answer.media.port == caller_addr[1]
            assert f"a=rtcp:{answer.media.port + 1}" in answer.sdp

            for seq in range(20):
                a.send_rtp(RtpPacket(102, seq, seq * 160, 0xA, bytes(32)), caller_addr)
                b.send_rtp(RtpPacket(102, seq, seq * 160, 0xB, bytes(32)), (HOST, callee_port))
                await asyncio.sleep(0.002)
            got_b, got_a = await b.wait_rtp(20), await a.wait_rtp(20)
            assert len(got_b) == 20 and len(got_a) == 20
            assert {r.source for r in got_b} == {(HOST, callee_port)}
            assert {r.source for r in got_a} == {caller_addr}
            assert [RtpPacket.parse(r.data).ssrc for r in got_b] == [0xA] * 20

            stats = await ng.query("parity")
            assert set(stats.legs) == {"alice", "bob"}
            alice, bob = stats.legs["alice"], stats.legs["bob"]
            assert (alice.in_dialogue_with, bob.in_dialogue_with) == ("bob", "alice")
            assert alice.rtp is not None and bob.rtp is not None
            assert alice.rtp.local_port == caller_addr[1] and bob.rtp.local_port == callee_port
            assert alice.rtcp is not None and alice.rtcp.local_port == caller_addr[1] + 1
            assert alice.rtp.endpoint == (HOST, a.port) and bob.rtp.endpoint == (HOST, b.port)
            assert alice.rtp.packets == 20 and bob.rtp.packets == 20
            assert stats.rtp_packets == 40
            assert stats.created > 0 and stats.last_signal >= stats.created
            assert "parity" in await ng.list()

            final = await ng.delete("parity", "alice")
            assert final is not None and set(final.legs) == {"alice", "bob"}
            with pytest.raises(NgError, match="Unknown call-id"):
                await ng.query("parity")
            assert await ng.delete("parity") is None  # ok + warning, as documented
    finally:
        a.close()
        b.close()
