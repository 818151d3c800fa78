"""The asyncio shell of the relay: UDP sockets, the clock, one periodic timer. No rules here.

The ng socket and the timers run on the asyncio loop. The media sockets sit in one epoll set of
their own (`PacketLoop`), which the loop watches as a single descriptor: each datagram is
stamped with its arrival time and handed to its `Leg`, which answers with a destination, and
the same bytes leave through the other leg's socket (packet_ports has the sockets, including
the connected fast path).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import socket
import time
from types import TracebackType
from typing import Any, cast

from lwork.media.relay import compiled
from lwork.media.relay.calls import Call, CallTable
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.dtmf import ScheduledPacket
from lwork.media.relay.ngserver import NgServer
from lwork.media.relay.packet_loop import PacketLoop, raise_fd_limit
from lwork.media.relay.packet_ports import SOCKET_BUFFER, Port
from lwork.media.relay.scheduling import apply_realtime_priority
from lwork.media.relay.session import Address, Leg
from lwork.media.relay.transcode_plan import Plan
from lwork.media.relay.transcode_wire import apply_state
from lwork.media.relay.transcoding import TranscoderPool

log = logging.getLogger(__name__)
_monotonic = time.monotonic


class _NgProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: NgServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            reply = self.server.handle_datagram(data, _monotonic(), time.time(), addr)
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
        self.ng.transcodes = lambda: self.transcoders is not None
        self._pairs: dict[int, tuple[Port, Port]] = {}
        self._transcoded: dict[int, str] = {}
        """Ports whose sockets a transcoding worker reads, and their call-ids."""
        self.transcoders: TranscoderPool | None = None
        self._packets = PacketLoop(config.connected_peers)
        # Each call's timeout is looked at about once per a tenth of the shortest timeout (at
        # least once a second), a slice of the calls per tick (see CallTable.expired).
        shortest = min(config.media_timeout_s, config.offer_timeout_s)
        self._expiry_check_s = max(config.tick_s, min(1.0, shortest / 10))
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
        log.debug("media relay: up to %d open files", raise_fd_limit())
        why = f" ({compiled.WHY})" if compiled.WHY else ""
        log.info("media relay: per-packet path %s%s", compiled.BUILD, why)
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _NgProtocol(self.ng), local_addr=(self.config.ng_host, self.config.ng_port)
        )
        self._ng_transport = transport
        self._loop.add_reader(self._packets.epoll.fileno(), self._packets.drain)
        if self.config.transcoding:
            self._start_transcoding()
        self._schedule_tick()

    def _start_transcoding(self) -> None:
        assert self._loop is not None
        from lwork.media.codecs import amrnb

        why = amrnb.available()
        if why is not None:
            log.warning("media relay: no transcoding AMR <-> G.711, calls are forwarded: %s", why)
            return
        config = self.config
        pool = TranscoderPool(
            config.transcode_workers, config.rtcp_interval_s, config.max_leg_pps,
            self._transcoded_stats,
        )  # fmt: skip
        pool.start(self._loop)
        self.transcoders = pool
        log.info("media relay: transcoding AMR <-> G.711 in %d worker process(es)", pool.size)

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
        if self.transcoders is not None:
            self.transcoders.close()

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
        rtp, rtcp = Port(rtp_sock, False, self._packets), Port(rtcp_sock, True, self._packets)
        rtp.sibling = rtcp
        for item in (rtp, rtcp):
            self._packets.add(item.sock.fileno(), item)
        self._pairs[port] = (rtp, rtcp)

    def attach(self, leg: Leg) -> None:
        call_id = self._transcoded.get(leg.rtp_port)
        if call_id is not None:  # its worker reads the sockets: it takes the new signalling
            assert self.transcoders is not None
            self.transcoders.update(call_id, leg)
            return
        rtp, rtcp = self._pairs[leg.rtp_port]
        assert leg.other is not None
        other_rtp, other_rtcp = self._pairs[leg.other.rtp_port]
        rtp.attach(leg, other_rtp)
        rtcp.attach(leg, other_rtcp)
        # Again after the signalling moved the latch: a companion connected to the old source
        # must go now, not at the next datagram on the shared socket.
        rtp.follow()
        rtcp.follow()

    def transcode(self, call: Call, plan: Plan) -> bool:
        """Hand the call's sockets to a transcoding worker (see `transcoding`): they leave
        this process's epoll set, and their companions close (the worker reads the shared
        sockets, which get the peers' datagrams again)."""
        if self.transcoders is None or not self.transcoders.workers:
            return False
        legs = (call.caller, call.callee)
        if call.caller.rtp_port != plan.app_port:
            legs = (call.callee, call.caller)
        fds = []
        for leg in legs:
            for item in self._pairs[leg.rtp_port]:
                item.drop_companion()
                self._packets.remove(item.sock.fileno())
                fds.append(item.sock.fileno())
            self._transcoded[leg.rtp_port] = call.call_id
        return self.transcoders.hand_over(call.call_id, plan, legs, fds)

    def untranscode(self, call: Call) -> None:
        """Take a transcoded call's sockets back: its worker lets go of its copies, and this
        process reads them again, each leg as the worker last reported it (latches,
        counters)."""
        for leg in call.legs():
            self._transcoded.pop(leg.rtp_port, None)
        if self.transcoders is not None:
            self.transcoders.delete(call.call_id)
        for leg in call.legs():
            for item in self._pairs[leg.rtp_port]:
                self._packets.add(item.sock.fileno(), item)
        for leg in call.legs():
            self.attach(leg)

    def _transcoded_stats(self, call_id: str, state: dict[str, Any]) -> None:
        call = self.table.calls.get(call_id)
        if call is None:
            return
        for leg in call.legs():
            leg_state = state["legs"].get(str(leg.rtp_port))
            if leg_state is not None:
                apply_state(leg, leg_state)
        call.transcoder = state["transcoder"]

    def close_pair(self, port: int) -> None:
        call_id = self._transcoded.pop(port, None)
        if call_id is not None and self.transcoders is not None:
            self.transcoders.delete(call_id)  # the first of its ports: the worker lets go
        pair = self._pairs.pop(port, None)
        if pair is None:
            return
        for item in pair:
            item.detach()
            self._packets.remove(item.sock.fileno())
            item.sock.close()

    def connected_peers(self, port: int) -> tuple[Address | None, Address | None]:
        """Where the RTP and RTCP companions of the leg on `port` are connected, as the kernel
        reports it (None: no companion, the leg uses its shared socket only)."""
        pair = self._pairs.get(port)
        if pair is None:
            return (None, None)
        peers: list[Address | None] = []
        for item in pair:
            companion = item.companion
            peers.append(None if companion is None else companion.sock.getpeername())
        return (peers[0], peers[1])

    def fast_path_packets(self, port: int) -> int:
        """Datagrams read through the leg's companions (from its latched sources) so far."""
        pair = self._pairs.get(port, ())
        return sum(item.companion.packets for item in pair if item.companion is not None)

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
            self._packets.unmute_due(now)
            for leg, data, destination in self.table.rtcp_reports(now, wall):
                pair = self._pairs.get(leg.rtp_port)
                if pair is not None:
                    try:
                        pair[1].sock.sendto(data, destination)
                    except OSError:
                        leg.rtcp.errors += 1
            share = self.config.tick_s / self._expiry_check_s
            for call_id in self.table.expired(now, math.ceil(len(self.table.calls) * share)):
                log.info("media timeout, deleting call %s", call_id)
                self.table.delete(call_id)
            for call_id, tag, dropped in self.table.flooding:
                log.warning(
                    "call %s leg %s: %d packets over max_leg_pps (%d/s) dropped",
                    call_id, tag, dropped, self.config.max_leg_pps,
                )  # fmt: skip
            self.table.flooding.clear()
        finally:
            self._schedule_tick()


async def serve_relay(config: RelayConfig, *, ready: asyncio.Event | None = None) -> None:
    """Run the relay until cancelled; `ready` is set once the ng socket is listening."""
    if config.workers > 1:
        from lwork.media.relay.front import serve_sharded

        await serve_sharded(config, None if ready is None else lambda _address: ready.set())
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
    if config.workers == 1:  # else each worker process raises itself, not the ng front
        apply_realtime_priority(config.realtime_priority)
    with new_runner(config) as runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(serve_relay(config))
