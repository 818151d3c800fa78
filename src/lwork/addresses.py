"""IP addresses as clients present them, and the key per-address limits count them under."""

from __future__ import annotations

import functools
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address

Address = IPv4Address | IPv6Address


def parse_address(text: str) -> Address | None:
    """An address from ``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1`` or ``[2001:db8::1]:80``;
    IPv4-mapped IPv6 becomes IPv4, a zone id is dropped; anything else is None."""
    text = text.strip().strip('"')
    if text.startswith("["):
        end = text.find("]")
        text = text[1:end] if end > 0 else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    # A zone id (``fe80::1%eth0``) names an interface of the sender, not who the client is.
    text = text.split("%", 1)[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=4096)
def canonical(text: str) -> str:
    """``text``'s address as it is written everywhere (``parse_address``), or ``text`` itself
    if it is none. Cached: a server hears the same few thousand peers over and over."""
    parsed = parse_address(text)
    return str(parsed) if parsed is not None else text


@functools.lru_cache(maxsize=4096)
def limit_key(address: str) -> str:
    """The key per-address limits count under: an IPv4 address, or an IPv6 address's /64
    (one subscriber's network: rotating within it is still one client)."""
    parsed = parse_address(address)
    if isinstance(parsed, IPv6Address):
        return str(IPv6Network((parsed, 64), strict=False))
    return str(parsed) if parsed is not None else address
