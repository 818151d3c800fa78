"""Allocation of RTP/RTCP port pairs (RTP even, RTCP = RTP + 1) from a configured range."""

from __future__ import annotations

from collections.abc import Callable


class PortsExhausted(Exception):
    """No free pair is left in the range (or none could be bound)."""


class PortPool:
    """Round-robin pool of even ports, so a freed pair is not reused at once (late packets)."""

    def __init__(self, port_min: int, port_max: int) -> None:
        first = port_min + (port_min % 2)
        if first + 1 > port_max:
            raise ValueError("port range holds no RTP/RTCP pair")
        self._free = list(range(first, port_max, 2))
        self._next = 0
        self._used: set[int] = set()
        self.capacity = len(self._free)

    @property
    def in_use(self) -> int:
        return len(self._used)

    def allocate(self, bind: Callable[[int], None]) -> int:
        """Return the first free even port for which `bind(port)` succeeds.

        `bind` raises OSError when the pair is taken by another process; that pair is skipped.
        """
        for _ in range(len(self._free)):
            port = self._free[self._next]
            self._next = (self._next + 1) % len(self._free)
            if port in self._used:
                continue
            try:
                bind(port)
            except OSError:
                continue
            self._used.add(port)
            return port
        raise PortsExhausted("no free RTP/RTCP port pair")

    def release(self, port: int) -> None:
        self._used.discard(port)
