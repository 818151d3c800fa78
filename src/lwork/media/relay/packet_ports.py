"""The media sockets of every leg, and what is done with each datagram read from them.

Each leg has one unconnected socket per port (RTP, RTCP) that hears everyone. Once the leg has
latched onto a source, a companion socket bound to the same local port and connect()ed to that
source takes over the source's datagrams: the kernel delivers a datagram to the socket whose
connected address matches it before the unconnected one (SO_REUSEPORT lets both share the
port). Its datagrams are read with `recv`, skip the source comparison, and whatever goes back
to that source leaves through it with `send`: no address tuple built or parsed in Python, no
route lookup per send in the kernel. Everything else (packets before latching, strays, the new
address of a moving phone) still reaches the unconnected socket, where the Leg's latching rules
decide; when they move the latch, the companion follows.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Final

from lwork.media.relay.companion import Companion, forward, forward_unpacked
from lwork.media.relay.packet_loop import (
    BACKLOG_S,
    DRAIN_LIMIT,
    MAX_BATCH,
    RECV_SIZE,
    PacketLoop,
    Reader,
)
from lwork.media.relay.session import Address, Leg
from lwork.media.relay.token_bucket import TokenBucket

SOCKET_BUFFER: Final = 1 << 18
CHURN_S: Final = 1.0
"""A port opens at most one companion socket per this interval."""
STRAYS_PER_S: Final = 200.0
"""Datagrams a second the shared socket of a port with a companion may bring (with a second's
worth at once): the phone's own traffic is on the companion, so what comes here is strays and
the odd handover. Beyond, the shared socket is muted for MUTE_S."""
MUTE_S: Final = 1.0
_monotonic: Final = time.monotonic
_REUSEPORT: Final = getattr(socket, "SO_REUSEPORT", None)


class Port(Reader):
    """One bound, non-blocking, unconnected UDP socket of a leg, and its connected companion.

    Plain `recvfrom`/`sendto` avoid a transport and a callback object per packet; a full send
    buffer drops the packet (counted), as a router would.
    """

    __slots__ = (
        "sock",
        "rtcp",
        "loop",
        "leg",
        "out",
        "sibling",
        "companion",
        "peer",
        "send",
        "latched",
        "connected_at",
        "orphans",
        "budget",
        "last_wakeup",
        "strays",
    )

    def __init__(self, sock: socket.socket, rtcp: bool, loop: PacketLoop) -> None:
        self.sock = sock
        self.rtcp = rtcp
        self.loop = loop
        self.leg: Leg | None = None
        self.out: Port | None = None
        """The other leg's port of the same kind: where this port's datagrams leave."""
        self.sibling: Port | None = None
        """The RTCP port of an RTP port: an RTP re-latch forgets the RTCP source too."""
        self.companion: Companion | None = None
        self.peer: Address | None = None
        """The address the companion is connected to; `send` reaches it."""
        self.send: Callable[[bytes], int] = sock.send  # replaced whenever `peer` is set
        self.latched: Address | None = None
        """The leg's latched source when the companion was last made to match it."""
        self.connected_at = -CHURN_S
        self.orphans = 0
        self.budget = 1
        self.last_wakeup = 0.0
        self.strays = TokenBucket(STRAYS_PER_S, 0.0)

    def attach(self, leg: Leg, out: Port) -> None:
        self.leg, self.out = leg, out

    def detach(self) -> None:
        self.drop_companion()
        self.leg = self.out = self.sibling = None

    def relay(self, limit: int) -> int:
        """Forward what is waiting on this port (at most `limit`); return how many were read.

        One datagram, unless the port was already ready less than BACKLOG_S ago: then it has a
        queue (a flood, or a relay behind) and reads in doubling batches up to MAX_BATCH.
        Reading a second datagram blindly would mostly cost an EAGAIN exception, and
        level-triggered epoll reports leftovers on the next wakeup anyway.
        """
        now = _monotonic()
        budget = min(limit, self.budget) if now - self.last_wakeup <= BACKLOG_S else 1
        self.last_wakeup = now
        count = self.pump(self.sock.recvfrom, budget, now)
        self.budget = min(MAX_BATCH, budget * 2) if count == budget else max(1, count)
        # While a companion carries the phone, what the shared socket reads is strays: a
        # stranger flooding a latched port costs the relay a second's budget, then the kernel
        # drops the rest for MUTE_S.
        if self.companion is not None and not self.strays.spend(count, now):
            self.loop.mute(self.sock.fileno(), now + MUTE_S, now)
        if self.leg is not None:
            self.follow()
            if self.sibling is not None:
                self.sibling.follow()
        return count

    def pump(self, recvfrom: Callable[[int], tuple[bytes, Address]], most: int, now: float) -> int:
        """Read up to `most` datagrams with their sources and hand them to the leg's rules."""
        leg, out, rtcp = self.leg, self.out, self.rtcp
        count = 0
        while count < most:
            try:
                data, source = recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.count_error()
                break
            if count:
                now = _monotonic()  # per packet: a batch takes a while, and jitter needs arrivals
            count += 1
            if leg is None or out is None:
                self.orphans += 1
                continue
            if rtcp:
                destination = leg.receive_rtcp(data, source, now)
            else:
                destination = leg.receive_rtp(data, source, now)
            if destination is not None:
                if not forward(out, data, destination):
                    self.count_error()
            elif leg.unpacked_to is not None and not forward_unpacked(out, leg):
                self.count_error()
        return count

    def count_error(self) -> None:
        if self.leg is not None:
            (self.leg.rtcp if self.rtcp else self.leg.rtp).errors += 1

    def follow(self) -> None:
        """Make the companion match the leg's latched source, after the latching rules ran."""
        while (leg := self.leg) is not None:
            latched = leg.rtcp_peer if self.rtcp else leg.rtp_peer
            if latched == self.latched:
                return
            self.drop_companion(count_queued=True)
            if latched is None or not self.loop.connect_peers:
                self.latched = latched
                return
            now = _monotonic()
            if now - self.connected_at < CHURN_S:
                # A latch flapping between addresses (two paths, or someone replaying the
                # SSRC) would cost a socket each time: wait on the shared socket, where the
                # peer's next datagram lands and calls this again.
                self.latched = None
                return
            self.latched, self.connected_at = latched, now
            self._connect(latched)  # may run the rules again: loop until they settle

    def _connect(self, peer: Address) -> None:
        try:
            companion = self._open_companion(peer)
        except OSError as exc:
            self.loop.fell_back(exc)  # today's path for this latch: one socket, sendto
            return
        # self.latched, not `peer`: the leg's own tuple (a copy in the compiled build, where
        # `peer` is unboxed), so forward() finds it with `is`.
        self.companion, self.peer, self.send = companion, self.latched, companion.sock.send
        self.loop.add(companion.sock.fileno(), companion)
        # What queued on this socket before the connect comes first (order of arrival), then
        # what the companion took in while it was bound but not yet connected: the reuseport
        # group may have handed it anyone's datagrams, so they go through the rules too.
        now = _monotonic()
        self.pump(self.sock.recvfrom, DRAIN_LIMIT, now)
        self.pump(companion.sock.recvfrom, DRAIN_LIMIT, now)

    def _open_companion(self, peer: Address) -> Companion:
        """A socket on this port connected to `peer`. SO_REUSEPORT is on only while it binds,
        so no other process can share the port unnoticed (the pool's bind test stays exact).
        """
        if _REUSEPORT is None:
            raise OSError("SO_REUSEPORT is not available")
        leg, out = self.leg, self.out
        assert leg is not None and out is not None
        sock = socket.socket(self.sock.family, socket.SOCK_DGRAM)
        try:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, _REUSEPORT, 1)
                sock.setsockopt(socket.SOL_SOCKET, _REUSEPORT, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
                sock.bind(self.sock.getsockname())
                sock.connect(peer)
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, _REUSEPORT, 0)
            finally:
                self.sock.setsockopt(socket.SOL_SOCKET, _REUSEPORT, 0)
        except OSError:
            sock.close()
            raise
        return Companion(sock, self, leg, self.rtcp, out)

    def drop_companion(self, *, count_queued: bool = False) -> None:
        companion = self.companion
        if companion is not None:
            if count_queued:
                self._count_queued(companion)
            self.companion = self.peer = None
            self.send = self.sock.send
            self.loop.unmute(self.sock.fileno())  # the phone is on the shared socket again
            self.loop.remove(companion.sock.fileno())
            companion.sock.close()

    def _count_queued(self, companion: Companion) -> None:
        """Drop and count what the companion of a latch the leg has left still holds: it came
        from the old address, and the latching rules must not see it (it would move the latch
        back), but a phone's lost packets must show in the leg's counters."""
        for _ in range(DRAIN_LIMIT):
            try:
                companion.sock.recv(RECV_SIZE)
            except OSError:  # BlockingIOError: nothing left
                return
            self.count_error()
