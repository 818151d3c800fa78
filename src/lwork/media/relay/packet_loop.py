"""One epoll set over every media socket of the process, drained from one loop callback."""

from __future__ import annotations

import logging
import resource
import select
from typing import Final

log = logging.getLogger(__name__)
# Final: the compiled build (mypyc) turns these into C constants instead of a module-dict lookup
# per packet.
MAX_EVENTS: Final = 1024
RECV_SIZE: Final = 4096
MAX_BATCH: Final = 64
"""Datagrams one socket may read per wakeup when it has a backlog."""
BACKLOG_S: Final = 0.0005
"""A socket ready again within this long has a queue: it reads in growing batches."""
DRAIN_LIMIT: Final = 1024
"""Datagrams per loop wakeup at most, so ng requests and timers wait milliseconds, not seconds,
when the relay is overloaded (what is left stays queued and ready)."""
MUTE_LOG_S: Final = 10.0
"""Muted sockets are logged at most this often (a flood over many ports is one line)."""


class Reader:
    """A socket in the loop's epoll set; `relay(limit)` reads what waits (at most `limit`
    datagrams), forwards it and returns how many it read.

    A common base, not a callable per descriptor: in the compiled build the loop then calls
    `relay` natively instead of through a bound method object.
    """

    __slots__ = ()

    def relay(self, limit: int) -> int:
        raise NotImplementedError


class PacketLoop:
    """All media sockets of the process in one epoll set, drained from one loop callback.

    The event loop watches only this set's descriptor: a wakeup costs one loop callback however
    many sockets are ready, and the work done before ng requests and timers get their turn is
    bounded by DRAIN_LIMIT datagrams, not by (ready sockets x batch size).
    """

    def __init__(self, connect_peers: bool) -> None:
        self.epoll = select.epoll()
        self.connect_peers = connect_peers
        self.handlers: dict[int, Reader] = {}
        self._fallback_logged = False
        self.muted: dict[int, float] = {}
        """Descriptors out of the epoll set until a time: their queue is left to the kernel,
        which drops what overflows instead of the relay reading it."""
        self.mutes = 0
        self._mute_logged_at = -MUTE_LOG_S

    def add(self, fd: int, reader: Reader) -> None:
        self.handlers[fd] = reader
        self.epoll.register(fd, select.EPOLLIN)

    def remove(self, fd: int) -> None:
        if self.handlers.pop(fd, None) is not None and self.muted.pop(fd, None) is None:
            self.epoll.unregister(fd)

    def mute(self, fd: int, until: float, now: float) -> None:
        """Stop reading `fd` until `until` (see `unmute_due`)."""
        if fd in self.handlers and fd not in self.muted:
            self.epoll.unregister(fd)
            self.muted[fd] = until
            self.mutes += 1
            if now - self._mute_logged_at >= MUTE_LOG_S:
                log.warning(
                    "media relay: %d flooded shared sockets muted so far (stray datagrams "
                    "beyond the budget on a latched port)",
                    self.mutes,
                )
                self._mute_logged_at = now

    def unmute(self, fd: int) -> None:
        if self.muted.pop(fd, None) is not None and fd in self.handlers:
            self.epoll.register(fd, select.EPOLLIN)

    def unmute_due(self, now: float) -> None:
        """Read muted sockets again once their time is up (the relay's timer tick)."""
        if self.muted:
            for fd in [fd for fd, until in self.muted.items() if until <= now]:
                self.unmute(fd)

    def fell_back(self, exc: OSError) -> None:
        if not self._fallback_logged:
            self._fallback_logged = True
            log.debug("no connected socket for a latched peer, using the shared one: %s", exc)

    def drain(self) -> None:
        handlers, left = self.handlers, DRAIN_LIMIT
        for fd, _mask in self.epoll.poll(0, MAX_EVENTS):
            try:
                reader = handlers[fd]  # a subscript is cheaper than .get() on the hot path
            except KeyError:
                continue  # a companion closed earlier in this batch
            left -= reader.relay(left)
            if left <= 0:
                return


def raise_fd_limit() -> int:
    """Lift the soft limit on open files to the hard one, and return it: a relay needs four
    descriptors per call, eight with connected peers, and the usual soft limit of 1,024 would
    cap it far below what the machine can relay."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    return soft
