"""Who the client is: the peer address, or what trusted proxies say in X-Forwarded-For.

Each proxy appends the address it received the request from, so only the entries appended by
our own proxies can be believed: the walk goes from the right and stops at the first address
that is not a trusted proxy. Everything to its left was written by the client. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_network

from lwork.addresses import Address, canonical, parse_address

# More hops than any real chain of proxies; bounds the work a long header can cause.
_MAX_HOPS = 16


class ClientAddress:
    """Derives the client address from the peer and its X-Forwarded-For headers."""

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        # ValueError on a bad entry: settings validate them first, so start-up fails loudly.
        self._trusted = tuple(ip_network(entry.strip(), strict=False) for entry in trusted_proxies)

    @property
    def proxied(self) -> bool:
        """Whether X-Forwarded-For is read at all (some proxy is trusted)."""
        return bool(self._trusted)

    def trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)

    def client(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The rightmost X-Forwarded-For address not written by a trusted proxy; the peer
        itself when the peer is not a trusted proxy. A malformed entry ends the walk at the
        last trusted hop: what lies beyond it cannot be read, so it is not believed."""
        if not self._trusted:
            return canonical(peer)
        hop = parse_address(peer)
        if hop is None:
            return peer
        if not self.trusted(hop):
            return str(hop)
        entries = [e for header in forwarded_for for e in header.split(",") if e.strip()]
        for entry in reversed(entries[-_MAX_HOPS:]):
            address = parse_address(entry)
            if address is None:
                break
            hop = address
            if not self.trusted(hop):
                break
        return str(hop)
