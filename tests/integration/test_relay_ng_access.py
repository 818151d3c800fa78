"""Who may drive the relay over ng, attacked through its real UDP socket: a stranger's source
address, unsigned or forged requests when a secret is set, and a reused cookie that must not
fetch another request's cached reply. The same on the front of a two-process relay."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from lwork.media.ng import bencode
from lwork.media.ng.auth import sign_cookie
from lwork.media.ng.client import NgClient, NgError
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.server import RelayServer, serve_relay
from lwork.media.sdp_min import build_sdp

HOST = "127.0.0.1"
SECRET = "correct horse battery staple"


async def exchange(
    relay: tuple[str, int], datagram: bytes, source_host: str = HOST, wait_s: float = 0.5
) -> dict[bytes, bencode.BValue] | None:
    """Send one raw ng datagram from `source_host`; the decoded reply, None when none came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source_host, 0))
        sock.setblocking(False)
        sock.sendto(datagram, relay)
        loop = asyncio.get_running_loop()
        try:
            reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), wait_s)
        except TimeoutError:
            return None
    cookie, _, body = reply.partition(b" ")
    assert datagram.startswith(cookie + b" ")
    decoded = bencode.decode(body)
    assert isinstance(decoded, dict)
    return decoded


def request(cookie: bytes, command: dict[str, bencode.Encodable]) -> bytes:
    return cookie + b" " + bencode.encode(command)


def signed(cookie: bytes, command: dict[str, bencode.Encodable], secret: str = SECRET) -> bytes:
    body = bencode.encode(command)
    return sign_cookie(secret.encode(), cookie, body, time.time()) + b" " + body


OFFER = {"command": "offer", "call-id": "c1", "from-tag": "a", "sdp": build_sdp(HOST, 4000)}


@asynccontextmanager
async def single_relay(**changes: object) -> AsyncIterator[tuple[str, int]]:
    config = RelayConfig(port_min=24000, port_max=24099, ng_port=0, **changes)  # type: ignore[arg-type]
    async with RelayServer(config) as relay:
        yield relay.ng_address[:2]


@asynccontextmanager
async def sharded_relay(**changes: object) -> AsyncIterator[tuple[str, int]]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        ng_port = probe.getsockname()[1]
    config = RelayConfig(
        ng_port=ng_port,
        port_min=24100,
        port_max=24199,
        workers=2,
        **changes,  # type: ignore[arg-type]
    )
    ready = asyncio.Event()
    task = asyncio.create_task(serve_relay(config, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), timeout=30)
        yield HOST, ng_port
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


RELAYS = [pytest.param(single_relay, id="single"), pytest.param(sharded_relay, id="front")]
Relay = Callable[..., AbstractAsyncContextManager[tuple[str, int]]]


async def test_a_reused_cookie_gets_its_own_requests_reply_not_the_cached_one() -> None:
    async with single_relay() as relay:
        assert await exchange(relay, request(b"same", {"command": "ping"})) == {b"result": b"pong"}
        listed = await exchange(relay, request(b"same", {"command": "list"}))
        assert listed == {b"result": b"ok", b"calls": []}
        offered = await exchange(relay, request(b"same", OFFER))
        assert offered is not None and offered[b"result"] == b"ok"
        # A true retransmission (same cookie, same request) still gets the same ports back.
        assert await exchange(relay, request(b"same", OFFER)) == offered
        again = await exchange(relay, request(b"again", {"command": "list"}))
        assert again == {b"result": b"ok", b"calls": [b"c1"]}


@pytest.mark.parametrize("start", RELAYS)
async def test_requests_from_a_source_outside_the_allowed_networks_are_dropped(
    start: Relay,
) -> None:
    async with start(ng_allowed_sources=("127.0.0.1",)) as relay:
        assert await exchange(relay, request(b"s1", OFFER), source_host="127.0.0.2") is None
        assert (
            await exchange(relay, request(b"s2", {"command": "list"}), source_host="127.0.0.2")
            is None
        )
        listed = await exchange(relay, request(b"s3", {"command": "list"}), wait_s=3.0)
        assert listed == {b"result": b"ok", b"calls": []}  # the stranger's offer never ran


@pytest.mark.parametrize("start", RELAYS)
async def test_with_a_secret_only_freshly_signed_requests_are_carried_out(start: Relay) -> None:
    async with start(ng_secret=SECRET) as relay:
        refusal = {b"result": b"error", b"error-reason": b"Authentication failed"}
        assert await exchange(relay, request(b"u1", OFFER), wait_s=3.0) == refusal
        assert await exchange(relay, signed(b"f1", OFFER, secret="guessed"), wait_s=3.0) == refusal
        stale = sign_cookie(SECRET.encode(), b"o1", bencode.encode(OFFER), time.time() - 300)
        assert await exchange(relay, stale + b" " + bencode.encode(OFFER), wait_s=3.0) == refusal
        # A signature is bound to its request: the same cookie on another body is refused.
        forged = (
            signed(b"b1", {"command": "list"}).partition(b" ")[0] + b" " + bencode.encode(OFFER)
        )
        assert await exchange(relay, forged, wait_s=3.0) == refusal

        async with NgClient(*relay, timeout_s=2.0, secret=SECRET) as ng:
            assert await ng.list() == []  # none of the refused offers ran
            await ng.offer("c2", "a", build_sdp(HOST, 4002))
            assert await ng.list() == ["c2"]
        async with NgClient(*relay, timeout_s=2.0, retries=0, secret="guessed") as wrong:
            with pytest.raises(NgError, match="Authentication failed"):
                await wrong.ping()
