"""Who the client is: the peer address, or what trusted proxies say in X-Forwarded-For.

Each proxy appends the address it received the request from, so only the entries appended by
our own proxies can be believed: the walk goes from the right and stops at the first address
that is not a trusted proxy. Everything to its left was written by the client. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address, ip_network

Address = IPv4Address | IPv6Address

# More hops than any real chain of proxies; bounds the work a long header can cause.
_MAX_HOPS = 16


def parse_address(text: str) -> Address | None:
    """An address from ``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1`` or ``[2001:db8::1]:80``;
    IPv4-mapped IPv6 becomes IPv4; anything else is None."""
    text = text.strip().strip('"')
    if text.startswith("["):
        end = text.find("]")
        text = text[1:end] if end > 0 else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddress:
    """Derives the client address from the peer and its X-Forwarded-For headers."""

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        # ValueError on a bad entry: settings validate them first, so start-up fails loudly.
        self._trusted = tuple(ip_network(entry.strip(), strict=False) for entry in trusted_proxies)

    def trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)

    def client(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The rightmost X-Forwarded-For address not written by a trusted proxy; the peer
        itself when the peer is not a trusted proxy. A malformed entry ends the walk at the
        last trusted hop: what lies beyond it cannot be read, so it is not believed."""
        hop = parse_address(peer)
        if hop is None:
            return peer
        if not self._trusted or not self.trusted(hop):
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


def limit_key(address: str) -> str:
    """The key per-address limits count under: an IPv4 address, or an IPv6 address's /64
    (one subscriber's network: rotating within it is still one client)."""
    parsed = parse_address(address)
    if isinstance(parsed, IPv6Address):
        return str(IPv6Network((parsed, 64), strict=False))
    return str(parsed) if parsed is not None else address
