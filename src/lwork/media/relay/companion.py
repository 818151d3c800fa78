"""The fast path of a latched leg: a socket connected to the latched source (see
packet_ports.py for how it shares the leg's port with the unconnected socket)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from lwork.media.relay.packet_loop import BACKLOG_S, MAX_BATCH, RECV_SIZE, Reader
from lwork.media.relay.session import Address, Leg

if TYPE_CHECKING:
    from lwork.media.relay.packet_ports import Port

_monotonic: Final = time.monotonic


def forward(out: Port, data: bytes, destination: Address) -> bool:
    """Send `data` out of `out` toward `destination`; False if the kernel refused it.

    Through `out`'s companion when `destination` is the peer it is connected to, else with
    `sendto` on the shared socket. `is` decides the usual case: `peer` is the very tuple the
    leg latched. `==` covers a copy of it (the compiled build copies a tuple that passes
    through a variable typed `Address`), which must not cost the fast path.
    """
    try:
        if destination is out.peer or destination == out.peer:
            send = out.send
            send(data)
        else:
            out.sock.sendto(data, destination)
    except OSError:
        return False
    return True


def forward_unpacked(out: Port, leg: Leg) -> bool:
    """Send the packets of the packed datagram `leg` just took apart (`Leg.unpacked`) one by
    one; False if the kernel refused any."""
    destination = leg.unpacked_to
    leg.unpacked_to = None
    sent = True
    if destination is not None:
        for packet in leg.unpacked:
            sent = forward(out, packet, destination) and sent
    return sent


class Companion(Reader):
    """A socket connected to a leg's latched source, sharing the leg's port: the fast path.

    Every datagram on it comes from the latched source by construction, so it is read with
    `recv` and accounted without a source check. An ICMP error from a vanished source surfaces
    here as an OSError and is counted.
    """

    __slots__ = ("sock", "recv", "port", "leg", "rtcp", "out", "packets", "budget", "last_wakeup")

    def __init__(self, sock: socket.socket, port: Port, leg: Leg, rtcp: bool, out: Port) -> None:
        self.sock = sock
        self.recv: Callable[[int], bytes] = sock.recv
        self.port = port
        self.leg = leg
        self.rtcp = rtcp
        self.out = out
        self.packets = 0
        self.budget = 1
        self.last_wakeup = 0.0

    def relay(self, limit: int) -> int:
        """`Port.relay` for the latched source: the same batching, no sources.

        The usual wakeup (a phone sends 50 packets a second) finds one datagram and takes the
        short branch; every bytecode saved there is saved for each packet. (Callables held in
        slots are read into locals before the call: CPython 3.11 only specialises that form.)
        """
        now = _monotonic()
        if now - self.last_wakeup > BACKLOG_S:
            self.last_wakeup = now
            recv = self.recv
            try:
                data = recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                self.budget = 1
                return 0
            except OSError:
                self.port.count_error()  # ICMP port unreachable: the source went away
                self.budget = 1
                return 0
            leg = self.leg
            if self.rtcp:
                destination = leg.rtcp_from_peer(data, now)
            else:
                destination = leg.rtp_from_peer(data, now)
            # forward() is a native call in the compiled build: no need to inline it here.
            if destination is not None:
                if not forward(self.out, data, destination):
                    self.port.count_error()
            elif leg.unpacked_to is not None and not forward_unpacked(self.out, leg):
                self.port.count_error()
            self.budget = 2
            self.packets += 1
            return 1
        self.last_wakeup = now
        return self._relay_backlog(min(limit, self.budget), now)

    def _relay_backlog(self, budget: int, now: float) -> int:
        recv, leg, out, rtcp = self.recv, self.leg, self.out, self.rtcp
        count = 0
        while count < budget:
            try:
                data = recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.port.count_error()
                break
            if count:
                now = _monotonic()  # per packet: a batch takes a while, and jitter needs arrivals
            count += 1
            if rtcp:
                destination = leg.rtcp_from_peer(data, now)
            else:
                destination = leg.rtp_from_peer(data, now)
            if destination is not None:
                if not forward(out, data, destination):
                    self.port.count_error()
            elif leg.unpacked_to is not None and not forward_unpacked(out, leg):
                self.port.count_error()
        self.budget = min(MAX_BATCH, budget * 2) if count == budget else max(1, count)
        self.packets += count
        return count
