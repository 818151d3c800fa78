"""lwork's ng client: typed parsing of replies, retransmission and errors at the UDP boundary."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwork.media.ng import bencode
from lwork.media.ng.client import NgClient, NgError, NgTimeout, call_status_stats, parse_call_stats

DATA = Path(__file__).parents[2] / "data"


def test_parses_a_captured_rtpengine_query_reply() -> None:
    reply = json.loads((DATA / "rtp_rtpengine_query.json").read_text())
    stats = parse_call_stats(reply)
    assert set(stats.legs) == {"alice", "bob"}
    alice = stats.legs["alice"]
    assert alice.in_dialogue_with == "bob"
    assert alice.rtp is not None and alice.rtcp is not None
    assert alice.rtp.local_port is not None and alice.rtcp.local_port == alice.rtp.local_port + 1
    assert alice.rtp.endpoint == ("127.0.0.1", 45000)
    assert alice.rtp.local_address == "127.0.0.1"
    assert alice.rtp.packets == 10
    assert alice.quality is None  # rtpengine computes none from RTP
    assert call_status_stats(alice) == {}
    assert stats.rtp_packets == 20
    assert stats.created == reply["created"] and stats.last_signal == reply["last signal"]


class FakeNg(asyncio.DatagramProtocol):
    """A loopback ng peer that ignores the first `drop` datagrams, then replies from a script."""

    def __init__(self, reply: dict[str, bencode.Encodable], drop: int) -> None:
        self.reply = reply
        self.drop = drop
        self.cookies: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        cookie = data.partition(b" ")[0]
        self.cookies.append(cookie)
        if len(self.cookies) <= self.drop:
            return
        assert self.transport is not None
        self.transport.sendto(cookie + b" " + bencode.encode(self.reply), addr)


@pytest.fixture
async def fake_factory() -> AsyncIterator[object]:
    transports: list[asyncio.BaseTransport] = []

    async def start(reply: dict[str, bencode.Encodable], drop: int = 0) -> tuple[FakeNg, int]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: FakeNg(reply, drop), local_addr=("127.0.0.1", 0)
        )
        transports.append(transport)
        return protocol, transport.get_extra_info("sockname")[1]

    yield start
    for transport in transports:
        transport.close()


async def test_retransmits_with_the_same_cookie(fake_factory: object) -> None:
    fake, port = await fake_factory({"result": "pong"}, drop=2)  # type: ignore[operator]
    async with NgClient("127.0.0.1", port, timeout_s=0.05, retries=5) as ng:
        assert await ng.ping()
    assert len(fake.cookies) == 3 and len(set(fake.cookies)) == 1


async def test_times_out_after_all_retries(fake_factory: object) -> None:
    fake, port = await fake_factory({"result": "pong"}, drop=100)  # type: ignore[operator]
    async with NgClient("127.0.0.1", port, timeout_s=0.02, retries=2) as ng:
        with pytest.raises(NgTimeout):
            await ng.ping()
    assert len(fake.cookies) == 3


async def test_error_reply_raises_with_reason(fake_factory: object) -> None:
    _, port = await fake_factory({"result": "error", "error-reason": "Unknown call-id"})  # type: ignore[operator]
    async with NgClient("127.0.0.1", port) as ng:
        with pytest.raises(NgError, match="Unknown call-id"):
            await ng.query("x")


async def test_offer_reply_without_usable_sdp_is_an_error(fake_factory: object) -> None:
    _, port = await fake_factory({"result": "ok", "sdp": "v=0\r\n"})  # type: ignore[operator]
    async with NgClient("127.0.0.1", port) as ng:
        with pytest.raises(NgError, match="unusable SDP"):
            await ng.offer("c", "a", "v=0\r\n")


class ScriptedRelay(asyncio.DatagramProtocol):
    """A loopback ng peer answering like rtpengine: no `lwork stats`, `query` for one call."""

    def __init__(self, query_reply: dict[str, bencode.Encodable]) -> None:
        self.query_reply = query_reply
        self.commands: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        cookie, _, body = data.partition(b" ")
        request = bencode.decode(body)
        assert isinstance(request, dict)
        command = request[b"command"]
        assert isinstance(command, bytes)
        self.commands.append(command)
        reply: dict[str, bencode.Encodable] = {"result": "error", "error-reason": "Unknown call-id"}
        if command == b"lwork stats":
            reply = {"result": "error", "error-reason": "Unrecognized command"}
        elif command == b"query" and request[b"call-id"] == b"known":
            reply = self.query_reply
        elif command == b"query" and request[b"call-id"] == b"silent":
            return  # an overloaded rtpengine: no answer at all
        assert self.transport is not None
        self.transport.sendto(cookie + b" " + bencode.encode(reply), addr)


async def test_query_many_falls_back_to_query_where_lwork_stats_is_refused() -> None:
    captured = json.loads((DATA / "rtp_rtpengine_query.json").read_text())
    loop = asyncio.get_running_loop()
    transport, relay = await loop.create_datagram_endpoint(
        lambda: ScriptedRelay(captured), local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        async with NgClient("127.0.0.1", port, timeout_s=0.5) as ng:
            found = await ng.query_many(["known", "gone"])
            assert list(found) == ["known"] and ng.compact_stats is False
            assert found["known"] == parse_call_stats(captured)
            assert await ng.relay_address("known", "alice") == ("127.0.0.1", 43022)
            with pytest.raises(NgError, match="no port"):
                await ng.relay_address("gone", "alice")
            assert relay.commands.count(b"query") == 4
            # a call the relay left unanswered is not reported as unknown: the batch fails
            with pytest.raises(NgTimeout):
                await ng.query_many(["known", "silent"])
        # refused once, never asked again
        assert relay.commands.count(b"lwork stats") == 1
    finally:
        transport.close()


async def test_forget_awaits_the_reply_without_reading_it(fake_factory: object) -> None:
    # The relay's answer does not matter to `forget` (an error or a 2.5 KB query reply alike),
    # but a lost datagram is still sent again, and silence is still a timeout.
    fake, port = await fake_factory({"result": "error", "error-reason": "x"}, drop=1)  # type: ignore[operator]
    async with NgClient("127.0.0.1", port, timeout_s=0.05, retries=3) as ng:
        await ng.forget("call-1")
    assert len(fake.cookies) == 2 and len(set(fake.cookies)) == 1
    _, silent = await fake_factory({"result": "ok"}, drop=100)  # type: ignore[operator]
    async with NgClient("127.0.0.1", silent, timeout_s=0.02, retries=1) as ng:
        with pytest.raises(NgTimeout):
            await ng.forget("call-1")
