"""A relay split over two worker processes behaves like one relay to its ng client."""

import asyncio
import socket

import pytest

from lwork.media.ng.client import NgClient, NgError
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.server import serve_relay
from lwork.media.relay.sharding import split_ports
from lwork.media.sdp_min import build_sdp

from fakes.rtp_peer import RtpPeer

HOST = "127.0.0.1"


async def test_two_workers_share_calls_behind_one_ng_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        ng_port = probe.getsockname()[1]
    config = RelayConfig(ng_port=ng_port, port_min=23000, port_max=23999, workers=2)
    slices = split_ports(23000, 23999, 2)
    ready = asyncio.Event()
    task = asyncio.create_task(serve_relay(config, ready=ready))
    peers = []
    try:
        await asyncio.wait_for(ready.wait(), timeout=30)
        async with NgClient(HOST, ng_port, timeout_s=2.0) as ng:
            assert await ng.ping()
            used_slices = set()
            for i in range(6):
                a, b = await RtpPeer.open(), await RtpPeer.open()
                peers += [a, b]
                call_id = f"w-{i}"
                offer = await ng.offer(call_id, "a", build_sdp(HOST, a.port))
                answer = await ng.answer(call_id, "a", "b", build_sdp(HOST, b.port))
                port = answer.media.port
                used_slices.add(next(n for n, (lo, hi) in enumerate(slices) if lo <= port <= hi))
                a.send_rtp(RtpPacket(102, 1, 160, 0xA, bytes(32)), (HOST, port))
                b.send_rtp(RtpPacket(102, 1, 160, 0xB, bytes(32)), (HOST, offer.media.port))
                assert len(await b.wait_rtp(1)) == 1 and len(await a.wait_rtp(1)) == 1
                stats = await ng.query(call_id)
                assert stats.legs["a"].rtp is not None and stats.legs["a"].rtp.packets == 1
            assert used_slices == {0, 1}  # both workers got calls
            assert sorted(await ng.list()) == [f"w-{i}" for i in range(6)]
            totals = (await ng.statistics())["currentstatistics"]
            assert totals["sessionsown"] == 6
            await ng.delete("w-0")
            with pytest.raises(NgError, match="Unknown call-id"):
                await ng.query("w-0")
            assert len(await ng.list()) == 5
    finally:
        for peer in peers:
            peer.close()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
