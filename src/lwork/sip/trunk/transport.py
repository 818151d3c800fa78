"""asyncio UDP and TCP transports under the SIP transaction layer: the SIP socket I/O of lwork.

``SipEndpoint`` owns one TransactionLayer, feeds it every parsed message with the loop's
monotonic time, sends what it emits (UDP or TCP, as the top Via says), keeps a single timer
armed at the layer's next deadline and hands events to the transaction user's callback.
Malformed input is counted and dropped; a TCP stream that cannot be framed is closed.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from lwork.sip.events import SipEvent
from lwork.sip.grammar import split_outside_quotes
from lwork.sip.matching import TransactionKey
from lwork.sip.message import DEFAULT_LIMITS, SipLimits, SipRequest, SipResponse, parse_message
from lwork.sip.stream import SipStreamParser
from lwork.sip.transaction import DEFAULT_TIMERS, Address, OutgoingMessage, TimerSettings
from lwork.sip.transaction_layer import TransactionLayer

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TransportStats:
    """Counters for what arrived and what was dropped."""

    received: int = 0
    sent: int = 0
    malformed: int = 0
    unroutable: int = 0


def stamp_via(request: SipRequest, source: Address) -> None:
    """Record where a request really came from in its top Via (RFC 3261 18.2.1, RFC 3581).

    ``received`` is always written, even when it equals the sent-by host, and an ``rport`` the
    sender asked for always gets the real port: whatever values the sender put there itself are
    overwritten, so a Via claiming ``received=<a trusted host>`` cannot borrow that host's trust.
    """
    first_line = request.headers.get("Via") or ""
    elements = [part.strip() for part in split_outside_quotes(first_line, ",")]
    via = request.top_via.with_param("received", source[0])
    if via.param("rport") is not None:
        via = via.with_param("rport", str(source[1]))
    elements[0] = str(via)
    request.headers.replace_first("Via", ", ".join(elements))


class SipEndpoint:
    """A SIP transaction layer bound to asyncio sockets."""

    def __init__(
        self,
        on_event: Callable[[SipEvent], None],
        *,
        timers: TimerSettings = DEFAULT_TIMERS,
        limits: SipLimits = DEFAULT_LIMITS,
    ) -> None:
        self._on_event = on_event
        self._limits = limits
        self._layer = TransactionLayer(timers)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.Server | None = None
        self._connections: dict[Address, _TcpConnection] = {}
        self._connecting: dict[Address, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._pumping = False
        self.stats = TransportStats()

    async def listen_udp(self, host: str = "127.0.0.1", port: int = 0) -> Address:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(host, port)
        )
        self._udp = transport
        address: Address = transport.get_extra_info("sockname")[:2]
        return address

    async def listen_tcp(self, host: str = "127.0.0.1", port: int = 0) -> Address:
        loop = asyncio.get_running_loop()
        self._tcp_server = await loop.create_server(lambda: _TcpConnection(self), host, port)
        address: Address = self._tcp_server.sockets[0].getsockname()[:2]
        return address

    def send_request(self, request: SipRequest, peer: Address) -> TransactionKey | None:
        reliable = request.top_via.transport != "UDP"
        key = self._layer.send_request(request, peer, reliable=reliable, now=self._now())
        self._pump()
        return key

    def send_response(self, response: SipResponse) -> None:
        self._layer.send_response(response, self._now())
        self._pump()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self._connections.values()):
            connection.close()
        if self._udp is not None:
            self._udp.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
            await self._tcp_server.wait_closed()

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _datagram_received(self, data: bytes, source: Address) -> None:
        try:
            message = parse_message(data, self._limits)
        except ValueError as exc:
            self.stats.malformed += 1
            log.debug("dropped malformed datagram from %s: %s", source, exc)
            return
        self._receive(message, source, reliable=False)

    def _receive(self, message: SipRequest | SipResponse, source: Address, reliable: bool) -> None:
        self.stats.received += 1
        try:
            if isinstance(message, SipRequest):
                stamp_via(message, source)
                self._layer.receive_request(message, source, reliable=reliable, now=self._now())
            else:
                self._layer.receive_response(message, self._now())
        except ValueError as exc:
            self.stats.malformed += 1
            log.debug("dropped unmatchable message from %s: %s", source, exc)
            return
        self._pump()

    def _pump(self) -> None:
        # Re-entrant calls (a callback answering at once) are picked up by the running loop.
        if self._pumping:
            return
        self._pumping = True
        try:
            while True:
                for outgoing in self._layer.messages_to_send():
                    self._transmit(outgoing)
                event = self._layer.next_event()
                if event is None:
                    break
                self._on_event(event)
        finally:
            self._pumping = False
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._layer.get_timer()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._fire_timer)

    def _fire_timer(self) -> None:
        self._timer = None
        self._layer.handle_timer(self._now())
        self._pump()

    def _transmit(self, outgoing: OutgoingMessage) -> None:
        data = bytes(outgoing.message)
        peer = outgoing.peer
        if outgoing.message.top_via.transport == "UDP":
            if self._udp is None:
                self.stats.unroutable += 1
                return
            self._udp.sendto(data, peer)
        elif (connection := self._connections.get(peer)) is not None:
            connection.write(data)
        elif isinstance(outgoing.message, SipRequest):
            self._send_after_connect(peer, data)
        else:
            self.stats.unroutable += 1  # the connection that carried the request is gone
            return
        self.stats.sent += 1

    def _send_after_connect(self, peer: Address, data: bytes) -> None:
        if peer in self._connecting:
            self._connecting[peer].append(data)
            return
        self._connecting[peer] = [data]
        task = asyncio.get_running_loop().create_task(self._connect(peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, peer: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(lambda: _TcpConnection(self), *peer)
        except OSError as exc:
            self.stats.unroutable += len(self._connecting.pop(peer, []))
            log.debug("TCP connect to %s failed: %s", peer, exc)
            return
        for data in self._connecting.pop(peer, []):
            connection.write(data)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._endpoint._datagram_received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)  # ICMP unreachable: the transaction times out


class _TcpConnection(asyncio.Protocol):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint
        self._parser = SipStreamParser(endpoint._limits)
        self._transport: asyncio.Transport | None = None
        self._peer: Address = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self._peer = (str(host), int(port))
        self._endpoint._connections[self._peer] = self

    def data_received(self, data: bytes) -> None:
        pings = self._parser.keepalives_received
        try:
            messages = self._parser.feed(data)
        except ValueError as exc:
            self._endpoint.stats.malformed += 1
            log.debug("closing TCP connection from %s: %s", self._peer, exc)
            self.close()
            return
        if self._parser.keepalives_received > pings:
            self.write(b"\r\n")  # RFC 5626 pong
        for message in messages:
            self._endpoint._receive(message, self._peer, reliable=True)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._endpoint._connections.get(self._peer) is self:
            del self._endpoint._connections[self._peer]

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
