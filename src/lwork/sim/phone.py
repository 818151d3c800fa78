"""A simulated phone app: the HTTP calls an app makes and real AMR RTP over UDP.

It speaks only the wire contract (CONTRACT §3–6), so it drives any lwork (or the original
server) the way an Android app would; the tests and ``lwork sim`` use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

from lwork.media.relay import rtcp
from lwork.media.relay.stats import StreamReceiver
from lwork.sim.amr import SAMPLES_PER_FRAME, demo_clip, rtp_payload

AMR_PAYLOAD_TYPE = 102
CLOCK_RATE = 8000  # AMR-NB
REPORT_EVERY = 100
"""RTP packets between the phone's own RTCP reports (2 s at 20 ms a packet)."""


class SimError(Exception):
    """The server refused what the simulated app asked for."""


@dataclass
class _Media(asyncio.DatagramProtocol):
    received: int = 0
    sources: set[tuple[str, int]] = field(default_factory=set)
    stream: StreamReceiver | None = None
    """What the phone measures of the stream it receives (RFC 3550), for its own reports."""

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        self.sources.add(addr)
        if len(data) < 12:
            return
        sequence, timestamp, ssrc = struct.unpack_from("!HII", data, 2)
        now = time.monotonic()
        if self.stream is None or self.stream.ssrc != ssrc:
            self.stream = StreamReceiver(ssrc, CLOCK_RATE, sequence, now)
        self.stream.on_packet(sequence, timestamp, len(data) - 12, now)


class _Rtcp(asyncio.DatagramProtocol):
    """Answers each RTCP sender report at once with a receiver report (LSR/DLSR), as phones do,
    so the relay can measure the round-trip time; remembers the last one for the phone's own
    reports."""

    def __init__(self, ssrc: int) -> None:
        self.ssrc = ssrc
        self.transport: asyncio.DatagramTransport | None = None
        self.last_sr: tuple[int, float] | None = None
        """The middle 32 bits of the last sender report's NTP time, and when it came."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packets = rtcp.parse_compound(data)
        except ValueError:
            return
        for packet in packets:
            if isinstance(packet, rtcp.SenderReport) and self.transport is not None:
                lsr = rtcp.ntp_middle32(packet.ntp_timestamp)
                self.last_sr = (lsr, time.monotonic())
                block = rtcp.ReportBlock(packet.ssrc, 0, 0, 0, 0, lsr, 0)
                self.transport.sendto(bytes(rtcp.ReceiverReport(self.ssrc, (block,))), addr)

    def report(self, media: _Media, sent: tuple[int, int], rtp_timestamp: int,
               relay: tuple[str, int]) -> None:  # fmt: skip
        """The phone's own compound report to the relay's RTCP port, as phones send one every
        few seconds: a sender report with a reception report of the stream it receives, and
        its CNAME. A relay that measures nothing itself (rtpengine) shows these figures.
        ``sent``: the packets and payload octets sent so far."""
        if self.transport is None:
            return
        blocks: tuple[rtcp.ReportBlock, ...] = ()
        if media.stream is not None:
            lsr, dlsr = 0, 0
            if self.last_sr is not None:  # DLSR in 1/65536 s since that report came
                lsr = self.last_sr[0]
                dlsr = int((time.monotonic() - self.last_sr[1]) * 65536) & 0xFFFFFFFF
            blocks = (media.stream.report_block(lsr, dlsr),)
        sr = rtcp.SenderReport(self.ssrc, rtcp.ntp_from_unix(time.time()),
                               rtp_timestamp & 0xFFFFFFFF, *sent, blocks)  # fmt: skip
        cname = rtcp.SourceDescription(((self.ssrc, ((1, b"lwork-sim"),)),))
        self.transport.sendto(bytes(sr) + bytes(cname), (relay[0], relay[1] + 1))


class SimPhone:
    """One app on one device. ``say`` receives a line for each thing that happens."""

    def __init__(
        self, server: str, phone: str, device: str, say: Callable[[str], None] = print
    ) -> None:
        self.server = server.rstrip("/")
        self.phone = phone
        self.device = device
        self.say = say
        self.http = httpx.AsyncClient(timeout=90)
        self.media = _Media()
        self.ssrc = secrets.randbits(32)
        self._transport: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._reporter = _Rtcp(self.ssrc)
        self._sender: asyncio.Task[None] | None = None
        self.sent = 0

    async def __aenter__(self) -> SimPhone:
        loop = asyncio.get_running_loop()
        # RTP on an even port, RTCP on the next one (RFC 3550 §11).
        for _ in range(100):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: self.media, local_addr=("127.0.0.1", 0)
            )
            port = transport.get_extra_info("sockname")[1]
            if port % 2 == 0:
                try:
                    self._rtcp, _ = await loop.create_datagram_endpoint(
                        lambda: self._reporter, local_addr=("127.0.0.1", port + 1)
                    )
                except OSError:
                    pass
                else:
                    self._transport = transport
                    return self
            transport.close()
        raise OSError("no free RTP/RTCP port pair on 127.0.0.1")

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_media()
        for transport in (self._transport, self._rtcp):
            if transport is not None:
                transport.close()
        await self.http.aclose()

    @property
    def rtp_port(self) -> int:
        assert self._transport is not None
        port: int = self._transport.get_extra_info("sockname")[1]
        return port

    async def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        response = await self.http.request(method, self.server + path, json=body, **kw)
        answer = response.json()
        if answer.get("status") != "ok":
            raise SimError(f"{self.phone} {path}: {answer}")
        return answer

    # accounts

    async def register(self, code: str, password: str, name: str = "") -> None:
        await self.request("POST", "/lwork/mobile/register", {
            "uuid": self.phone, "device_id": self.device, "auth_code": code, "pwd": password,
            "name": name, "group_id": "common",
        })  # fmt: skip

    async def request_code(self) -> None:
        await self.request("POST", "/lwork/sms/auth_code", {
            "uuid": self.phone, "device_id": self.device, "type": "register",
        })  # fmt: skip

    async def login(self, password: str) -> None:
        await self.request("POST", "/lwork/mobile/login", {
            "acc": self.phone, "pwd": password, "device_id": self.device,
            "clidata": {"os_type": "android"},
        })  # fmt: skip
        self.say(f"{self.phone}: logged in")

    async def poll(self) -> list[dict[str, Any]]:
        answer = await self.request("POST", "/channel/push_service", {
            "acc": self.phone, "device_id": self.device, "self_phone": self.phone,
        })  # fmt: skip
        events: list[dict[str, Any]] = answer["data"]
        return events

    async def wait_for_call(self) -> dict[str, Any]:
        while True:
            for event in await self.poll():
                if event.get("event") == "p2p_inform_called":
                    self.say(f"{self.phone}: incoming call from {event['caller']}")
                    opdata: dict[str, Any] = event["opdata"]
                    return opdata

    # calls

    async def call(self, callee: str) -> dict[str, Any]:
        started: dict[str, Any] = await self.request("POST", "/lwork/mobile/voip/calls", {
            "user_id": self.phone, "caller_phone": self.phone, "callee_phone": callee,
            "sdp": {"ip": ["127.0.0.1"], "port": self.rtp_port}, "userclass": "registered",
            "dev_id": self.device, "type": "p2p", "acc": self.phone, "clidata": {},
        })  # fmt: skip
        self.say(f"{self.phone}: calling {callee} (session {started['session_id']})")
        return started

    async def ring(self, opdata: dict[str, Any]) -> None:
        await self.request("POST", "/lwork/mobile/p2p_ringing", {"opdata": opdata})
        self.say(f"{self.phone}: ringing")

    async def answer(self, opdata: dict[str, Any]) -> dict[str, Any]:
        answered: dict[str, Any] = await self.request("POST", "/lwork/mobile/p2p_answer", {
            "opdata": opdata, "caller_phone": opdata.get("caller", ""), "callee_phone": self.phone,
            "sdp": {"ip": ["127.0.0.1"], "port": self.rtp_port}, "userclass": "", "clidata": {},
        })  # fmt: skip
        self.say(f"{self.phone}: answered (session {answered['session_id']})")
        return answered

    async def reject(self, opdata: dict[str, Any]) -> None:
        await self.request("POST", "/lwork/mobile/p2p_reject", {"opdata": opdata})
        self.say(f"{self.phone}: rejected")

    async def status(self, sid: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self.request(
            "GET", "/lwork/mobile/voip/calls", params={"session_id": sid}
        )
        return answer

    async def hangup(self, sid: str) -> None:
        await self.request("DELETE", "/lwork/mobile/voip/calls", params={"session_id": sid})
        self.say(f"{self.phone}: hung up")

    # media

    def start_media(self, relay: tuple[str, int]) -> None:
        """Send the AMR clip to the relay in real time (20 ms per packet), looping."""
        self._sender = asyncio.create_task(self._send_clip(relay))

    async def stop_media(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None

    async def _send_clip(self, relay: tuple[str, int]) -> None:
        assert self._transport is not None
        frames = demo_clip()
        ssrc = self.ssrc
        loop = asyncio.get_running_loop()
        start = loop.time()
        octets = 0
        for n in range(10**9):
            header = struct.pack(
                "!BBHII", 0x80, AMR_PAYLOAD_TYPE, n & 0xFFFF, (n * SAMPLES_PER_FRAME) & 0xFFFFFFFF,
                ssrc,
            )  # fmt: skip
            payload = rtp_payload(frames[n % len(frames)])
            self._transport.sendto(header + payload, relay)
            self.sent += 1
            octets += len(payload)
            if n % REPORT_EVERY == REPORT_EVERY - 1:
                sent = (self.sent, octets)
                self._reporter.report(self.media, sent, n * SAMPLES_PER_FRAME, relay)
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - loop.time()))


def describe(status: dict[str, Any]) -> str:
    """One line of live call status for a person watching."""
    stats = status.get("stats") or {}
    line = f"{status['peer_status']:<12}"
    if stats:
        # Behind rtpengine a status carries only the figures rtpengine reports ("?": absent).
        def get(key: str) -> object:
            return stats.get(key, "?")

        line += (
            f" pr={get('pr')} pl={get('pl')} jitter={get('jitter')}ms"
            f" rtt={get('rttms')}ms loss={get('lostrate')} mos={get('mos')}"
            f" {get('total_eval')}"
        )
    return line
