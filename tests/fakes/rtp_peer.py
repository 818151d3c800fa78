"""A phone-like RTP/RTCP endpoint on real loopback sockets, for relay integration tests.

It owns an adjacent port pair (RTP even, RTCP = RTP + 1), sends scripted streams and records
every datagram it receives together with its arrival time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field

from lwork.media.relay.rtp import RtpPacket


@dataclass
class Received:
    data: bytes
    source: tuple[str, int]
    arrival: float


def _bind_pair(host: str) -> tuple[socket.socket, socket.socket]:
    for _ in range(200):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((host, 0))
        port = rtp.getsockname()[1]
        if port % 2 == 0 and port < 65535:
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtcp.bind((host, port + 1))
            except OSError:
                rtcp.close()
            else:
                return rtp, rtcp
        rtp.close()
    raise RuntimeError("no adjacent UDP port pair on loopback")


@dataclass
class RtpPeer:
    """One endpoint; use `await RtpPeer.open()` and `close()`."""

    rtp: socket.socket
    rtcp: socket.socket
    rtp_in: list[Received] = field(default_factory=list)
    rtcp_in: list[Received] = field(default_factory=list)

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> RtpPeer:
        rtp, rtcp = _bind_pair(host)
        peer = cls(rtp, rtcp)
        loop = asyncio.get_running_loop()
        for sock, sink in ((rtp, peer.rtp_in), (rtcp, peer.rtcp_in)):
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), peer._drain, sock, sink)
        return peer

    @property
    def port(self) -> int:
        return int(self.rtp.getsockname()[1])

    def _drain(self, sock: socket.socket, sink: list[Received]) -> None:
        while True:
            try:
                data, source = sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            sink.append(Received(data, source, time.monotonic()))

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in (self.rtp, self.rtcp):
            with contextlib.suppress(Exception):
                loop.remove_reader(sock.fileno())
            sock.close()

    def send_rtp(self, packet: RtpPacket | bytes, destination: tuple[str, int]) -> float:
        """Send now; return the monotonic send time."""
        sent = time.monotonic()
        self.rtp.sendto(bytes(packet), destination)
        return sent

    def send_rtcp(self, data: bytes, destination: tuple[str, int]) -> None:
        self.rtcp.sendto(data, destination)

    async def wait_rtp(self, count: int, timeout: float = 10.0) -> list[Received]:
        return await _wait(self.rtp_in, count, timeout)

    async def wait_rtcp(self, count: int, timeout: float = 10.0) -> list[Received]:
        return await _wait(self.rtcp_in, count, timeout)


async def _wait(sink: list[Received], count: int, timeout: float) -> list[Received]:
    deadline = time.monotonic() + timeout
    while len(sink) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    return list(sink)


async def eventually(predicate: object, timeout: float = 10.0) -> bool:
    """Poll a zero-argument callable until it is truthy (generous timeouts, no fixed sleeps)."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return bool(predicate())
