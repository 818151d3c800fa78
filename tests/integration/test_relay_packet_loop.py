"""The relay's packet loop under many calls at once and under a backlog, through real sockets."""

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from lwork.media.ng.client import NgClient
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.server import RelayServer
from lwork.media.sdp_min import build_sdp

from fakes.rtp_peer import eventually

HOST = "127.0.0.1"
_HEADER = struct.Struct("!BBHII")


def _packet(seq: int, ssrc: int) -> bytes:
    return _HEADER.pack(0x80, 102, seq, seq * 160, ssrc) + bytes(160)


def _endpoint() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    return sock


def _read_all(sock: socket.socket) -> list[tuple[int, int]]:
    """(SSRC, sequence) of every datagram waiting on `sock`."""
    got: list[tuple[int, int]] = []
    while True:
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            return got
        _, _, seq, _, ssrc = _HEADER.unpack_from(data)
        got.append((ssrc, seq))


@pytest.fixture
async def relay() -> AsyncIterator[RelayServer]:
    config = RelayConfig(ng_port=0, port_min=24000, port_max=24999)
    async with RelayServer(config) as server:
        yield server


async def _call(ng: NgClient, call_id: str, a: socket.socket, b: socket.socket) -> tuple[int, int]:
    offer = await ng.offer(call_id, "a", build_sdp(HOST, a.getsockname()[1]))
    answer = await ng.answer(call_id, "a", "b", build_sdp(HOST, b.getsockname()[1]))
    return answer.media.port, offer.media.port


async def test_many_concurrent_calls_each_get_exactly_their_own_stream(
    relay: RelayServer,
) -> None:
    calls, packets = 60, 15
    endpoints = [(_endpoint(), _endpoint()) for _ in range(calls)]
    received: dict[socket.socket, list[tuple[int, int]]] = {s: [] for p in endpoints for s in p}
    try:
        async with NgClient(*relay.ng_address, timeout_s=2.0) as ng:
            ports = [await _call(ng, f"c{i}", a, b) for i, (a, b) in enumerate(endpoints)]
            # Interleaved across all calls and both directions, as concurrent phones would be.
            for seq in range(packets):
                for i, ((a, b), (to_a_side, to_b_side)) in enumerate(
                    zip(endpoints, ports, strict=True)
                ):
                    a.sendto(_packet(seq, 2 * i + 1), (HOST, to_a_side))
                    b.sendto(_packet(seq, 2 * i + 2), (HOST, to_b_side))
                if seq % 5 == 4:
                    await asyncio.sleep(0.01)

            def complete() -> bool:
                for sock, got in received.items():
                    got.extend(_read_all(sock))
                return all(len(got) >= packets for got in received.values())

            assert await eventually(complete, timeout=5.0)
            for i, (a, b) in enumerate(endpoints):
                assert received[b] == [(2 * i + 1, seq) for seq in range(packets)]
                assert received[a] == [(2 * i + 2, seq) for seq in range(packets)]
            stats = await ng.query("c7")
            assert stats.legs["a"].rtp is not None and stats.legs["a"].rtp.packets == packets
    finally:
        for a, b in endpoints:
            a.close()
            b.close()


async def test_a_backlog_on_one_port_is_relayed_completely_and_in_order(
    relay: RelayServer,
) -> None:
    a, b = _endpoint(), _endpoint()
    try:
        async with NgClient(*relay.ng_address, timeout_s=2.0) as ng:
            to_a_side, _ = await _call(ng, "burst", a, b)
            # Sent without yielding to the loop: the relay finds all of them queued at once.
            for seq in range(250):
                a.sendto(_packet(seq, 7), (HOST, to_a_side))
            got: list[tuple[int, int]] = []

            def complete() -> bool:
                got.extend(_read_all(b))
                return len(got) >= 250

            assert await eventually(complete, timeout=5.0)
            assert got == [(7, seq) for seq in range(250)]
            quality = (await ng.query("burst")).legs["a"]
            assert quality.rtp is not None and quality.rtp.packets == 250
    finally:
        a.close()
        b.close()


async def test_early_media_from_the_callee_reaches_the_caller_before_the_answer(
    relay: RelayServer,
) -> None:
    a, b = _endpoint(), _endpoint()
    try:
        async with NgClient(*relay.ng_address, timeout_s=2.0) as ng:
            offer = await ng.offer("early", "a", build_sdp(HOST, a.getsockname()[1]))
            # The callee learns the relay port from the offer and may send before answering.
            b.sendto(_packet(1, 9), (HOST, offer.media.port))
            got_a: list[tuple[int, int]] = []

            def caller_heard() -> bool:
                got_a.extend(_read_all(a))
                return bool(got_a)

            assert await eventually(caller_heard, timeout=2.0)
            assert got_a == [(9, 1)]
            answer = await ng.answer("early", "a", "b", build_sdp(HOST, b.getsockname()[1]))
            a.sendto(_packet(1, 8), (HOST, answer.media.port))
            got_b: list[tuple[int, int]] = []

            def callee_heard() -> bool:
                got_b.extend(_read_all(b))
                return bool(got_b)

            assert await eventually(callee_heard, timeout=2.0)
            assert got_b == [(8, 1)]
    finally:
        a.close()
        b.close()
