"""Fixtures shared by the relay's socket tests: an ng client to the module's `relay`, two RTP
phones, and a call between them. Import the fixtures by their function names; tests ask for
them as `ng` and `peers`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lwork.media.ng.client import NgClient
from lwork.media.relay.server import RelayServer
from lwork.media.sdp_min import build_sdp

from fakes.rtp_peer import RtpPeer

HOST = "127.0.0.1"


@pytest.fixture(name="ng")
async def ng_fixture(relay: RelayServer) -> AsyncIterator[NgClient]:
    async with NgClient(*relay.ng_address, timeout_s=2.0) as client:
        yield client


@pytest.fixture(name="peers")
async def peers_fixture() -> AsyncIterator[tuple[RtpPeer, RtpPeer]]:
    a, b = await RtpPeer.open(), await RtpPeer.open()
    yield a, b
    a.close()
    b.close()


async def start_call(
    ng: NgClient, a: RtpPeer, b: RtpPeer, call_id: str = "call-1"
) -> tuple[int, int]:
    """Set up a call; return (relay port A sends to, relay port B sends to)."""
    offer = await ng.offer(call_id, "alice", build_sdp(HOST, a.port))
    answer = await ng.answer(call_id, "alice", "bob", build_sdp(HOST, b.port))
    assert await ng.relay_address(call_id, "alice") == (HOST, answer.media.port)
    return answer.media.port, offer.media.port
