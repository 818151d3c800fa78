"""The asyncio shell of the relay: UDP sockets, the clock, one periodic timer. No rules here.

The ng socket and the timers run on the asyncio loop. The media sockets sit in one epoll set of
their own (`_PacketLoop`), which the loop watches as a single descriptor: each datagram is
stamped with its arrival time and handed to its `Leg`, which answers with a destination, and
the same bytes leave through the other leg's socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import select
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import cast

from lwork.media.relay.calls import CallTable
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.dtmf import ScheduledPacket
from lwork.media.relay.ngserver import NgServer
from lwork.media.relay.session import Address, Leg

log = logging.getLogger(__name__)
SOCKET_BUFFER = 1 << 18
RECV_SIZE = 4096
MAX_EVENTS = 1024
MAX_BATCH = 64
BACKLOG_S = 0.0005
DRAIN_LIMIT = 1024
"""Datagrams per loop wakeup at most, so ng requests and timers wait milliseconds, not seconds,
when the relay is overloaded (what is left stays queued and ready)."""
_monotonic = time.monotonic
Receive = Callable[[bytes, Address, float], Address | None]


class _Port:
    """One bound, non-blocking UDP socket of a leg and where its datagrams go.

    Plain `recvfrom`/`sendto` avoid a transport and a callback object per packet; a full send
    buffer drops the packet (counted), as a router would.
    """

    __slots__ = ("sock", "leg", "route", "rtcp", "orphans", "budget", "last_wakeup")

    def __init__(self, sock: socket.socket, rtcp: bool) -> None:
        self.sock = sock
        self.rtcp = rtcp
        self.leg: Leg | None = None
        self.route: tuple[Receive, socket.socket] | None = None
        self.orphans = 0
        self.budget = 1
        self.last_wakeup = 0.0

    def attach(self, leg: Leg, out: socket.socket) -> None:
        self.leg = leg
        self.route = (leg.receive_rtcp if self.rtcp else leg.receive_rtp, out)

    def detach(self) -> None:
        self.leg = self.route = None

    def relay(self, limit: int) -> int:
        """Forward what is waiting on this port (at most `limit`); return how many were read.

        One datagram, unless the port was already ready less than BACKLOG_S ago: then it has a
        queue (a flood, or a relay behind) and reads in doubling batches up to MAX_BATCH.
        Reading a second datagram blindly would mostly cost an EAGAIN exception, and
        level-triggered epoll reports leftovers on the next wakeup anyway.
        """
        clock = _monotonic
        now = clock()
        budget = min(limit, self.budget) if now - self.last_wakeup <= BACKLOG_S else 1
        self.last_wakeup = now
        recvfrom, route = self.sock.recvfrom, self.route
        count = 0
        while count < budget:
            try:
                data, source = recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.count_error()  # ICMP port unreachable from a peer that went away
                break
            if count:
                now = clock()  # per packet: a batch takes a while, and jitter needs arrivals
            count += 1
            if route is None:
                self.orphans += 1
                continue
            destination = route[0](data, source, now)
            if destination is not None:
                try:
                    route[1].sendto(data, destination)
                except OSError:
                    self.count_error()
        self.budget = min(MAX_BATCH, budget * 2) if count == budget else max(1, count)
        return count

    def count_error(self) -> None:
        if self.leg is not None:
            (self.leg.rtcp if self.rtcp else self.leg.rtp).errors += 1


class _PacketLoop:
    """All media sockets of the process in one epoll set, drained from one loop callback.

    The event loop watches only this set's descriptor: a wakeup costs one loop callback however
    many sockets are ready, and the work done before ng requests and timers get their turn is
    bounded by DRAIN_LIMIT datagrams, not by (ready sockets x batch size).
    """

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.ports: dict[int, _Port] = {}

    def add(self, port: _Port) -> None:
        fd = port.sock.fileno()
        self.ports[fd] = port
        self.epoll.register(fd, select.EPOLLIN)

    def remove(self, port: _Port) -> None:
        fd = port.sock.fileno()
        if self.ports.pop(fd, None) is not None:
            self.epoll.unregister(fd)

    def drain(self) -> None:
        ports, left = self.ports, DRAIN_LIMIT
        for fd, _mask in self.epoll.poll(0, MAX_EVENTS):
            port = ports.get(fd)
            if port is not None:
                left -= port.relay(left)
                if left <= 0:
                    return


class _NgProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: NgServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            reply = self.server.handle_datagram(data, _monotonic(), time.time())
        except Exception:  # a bug must not take the control socket down with it
            log.exception("ng request failed")
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class RelayServer:
    """Owns the sockets of one relay process. Use `async with RelayServer(config) as relay`."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.table = CallTable(config, self, lambda: secrets.randbits(32))
        self.ng = NgServer(self.table, self._play_dtmf, time.time())
        self._pairs: dict[int, tuple[_Port, _Port]] = {}
        self._packets = _PacketLoop()
        # Timeouts are checked at a tenth of the shortest one (at most once a second), not
        # every tick: the check walks every call, which costs milliseconds at 1,000 calls.
        shortest = min(config.media_timeout_s, config.offer_timeout_s)
        self._expiry_check_s = max(config.tick_s, min(1.0, shortest / 10))
        self._next_expiry_check = 0.0
        self._ng_transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def ng_address(self) -> Address:
        assert self._ng_transport is not None
        host, port = self._ng_transport.get_extra_info("sockname")[:2]
        return (str(host), int(port))

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _NgProtocol(self.ng), local_addr=(self.config.ng_host, self.config.ng_port)
        )
        self._ng_transport = transport
        self._loop.add_reader(self._packets.epoll.fileno(), self._packets.drain)
        self._schedule_tick()

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for call_id in list(self.table.calls):
            self.table.delete(call_id)
        if self._ng_transport is not None:
            self._ng_transport.close()
        if self._loop is not None:
            self._loop.remove_reader(self._packets.epoll.fileno())
        self._packets.epoll.close()

    async def __aenter__(self) -> RelayServer:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # PortBinder: synchronous, because port allocation happens inside one ng request.
    def open_pair(self, port: int) -> None:
        assert self._loop is not None
        rtp_sock = self._bind(port)
        try:
            rtcp_sock = self._bind(port + 1)
        except OSError:
            rtp_sock.close()
            raise
        pair = (_Port(rtp_sock, rtcp=False), _Port(rtcp_sock, rtcp=True))
        for item in pair:
            self._packets.add(item)
        self._pairs[port] = pair

    def attach(self, leg: Leg) -> None:
        rtp, rtcp = self._pairs[leg.rtp_port]
        assert leg.other is not None
        other_rtp, other_rtcp = self._pairs[leg.other.rtp_port]
        rtp.attach(leg, other_rtp.sock)
        rtcp.attach(leg, other_rtcp.sock)

    def close_pair(self, port: int) -> None:
        pair = self._pairs.pop(port, None)
        if pair is None:
            return
        for item in pair:
            item.detach()
            self._packets.remove(item)
            item.sock.close()

    def _bind(self, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.config.bind_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
            sock.bind((self.config.bind_host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def _play_dtmf(
        self, target: Leg, destination: Address, packets: list[ScheduledPacket], delay: float
    ) -> None:
        if self._loop is None:
            return
        for packet in packets:
            self._loop.call_later(
                delay + packet.offset, self._send_rtp, target.rtp_port, packet.data, destination
            )

    def _send_rtp(self, port: int, data: bytes, destination: Address) -> None:
        pair = self._pairs.get(port)
        if pair is not None:
            try:
                pair[0].sock.sendto(data, destination)
            except OSError:
                pair[0].orphans += 1

    def _schedule_tick(self) -> None:
        assert self._loop is not None
        self._timer = self._loop.call_later(self.config.tick_s, self._tick)

    def _tick(self) -> None:
        now, wall = _monotonic(), time.time()
        try:
            for leg, data, destination in self.table.rtcp_reports(now, wall):
                pair = self._pairs.get(leg.rtp_port)
                if pair is not None:
                    try:
                        pair[1].sock.sendto(data, destination)
                    except OSError:
                        leg.rtcp.errors += 1
            if now >= self._next_expiry_check:
                self._next_expiry_check = now + self._expiry_check_s
                for call_id in self.table.expired(now):
                    log.info("media timeout, deleting call %s", call_id)
                    self.table.delete(call_id)
        finally:
            self._schedule_tick()


async def serve_relay(config: RelayConfig, *, ready: asyncio.Event | None = None) -> None:
    """Run the relay until cancelled; `ready` is set once the ng socket is listening."""
    if config.workers > 1:
        from lwork.media.relay.front import serve_sharded

        await serve_sharded(config, ready)
        return
    async with RelayServer(config) as relay:
        log.info("media relay: ng on %s:%d", *relay.ng_address)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()


def new_runner(config: RelayConfig) -> asyncio.Runner:
    """An asyncio runner on uvloop when configured and installed."""
    if config.use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio.Runner()


def run_relay(config: RelayConfig) -> None:
    """Blocking entry point for `lwork relay`, until Ctrl-C or SIGTERM."""
    with new_runner(config) as runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(serve_relay(config))
