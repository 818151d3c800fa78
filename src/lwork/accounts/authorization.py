"""Whether a token-less request comes from the account's own device (CONTRACT §3): pure rules,
no I/O; ``AccountService.authorize`` feeds them the session and its recorded long poll.

Existing apps send no token, so public data (a phone number is the uuid) must never be enough:

- on a route whose request carries a device id, it must be present and equal the session's;
- a route that spends money, changes the account or where its events go, or reads private data
  must also come from the network of the session's current long poll: the same IPv4 address or
  the same IPv6 /64 (a phone's privacy addresses change within its /64), seen within the
  presence window.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Guard:
    """What a route demands of a token-less request."""

    device_id: bool
    """The route's request has a device id (``device_id``, ``dev_id``): a missing one fails."""
    poll_network: bool
    """The route spends money, changes the account or its events, or reads private data."""


DEVICE = Guard(device_id=True, poll_network=False)
"""App-to-app call start: a device id, nothing that costs the account anything up front."""
DEVICE_AND_POLL = Guard(device_id=True, poll_network=True)
"""Phone calls, ``add_info``, ``modify_pwd``."""
POLL = Guard(device_id=False, poll_network=True)
"""Routes whose request has no device id in the contract: ``callback``, ``get_coin``,
``baidu_push_register`` (a device id sent anyway must still match)."""


@dataclass(frozen=True, slots=True)
class Proof:
    """What a request offers: its token, its device id, the address it came from."""

    token: str | None
    device_id: str | None
    client_ip: str


@dataclass(frozen=True, slots=True)
class PollSeen:
    """The session's latest recorded long poll."""

    at: float | None
    client_ip: str | None


def network_of(ip: str) -> str:
    """The network a poll's address stands for: an IPv4 address itself (an IPv4-mapped IPv6
    address counts as its IPv4), an IPv6 address its /64; anything unparsable as written."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def device_matches(guard: Guard, offered: str | None, session_device: str) -> bool:
    if offered is None:
        return not guard.device_id
    return offered == session_device


def from_poll_network(poll: PollSeen, client_ip: str, now: float, window_s: float) -> bool:
    """The request comes from the network of a long poll seen within the window."""
    if poll.at is None or poll.client_ip is None or now - poll.at > window_s:
        return False
    return network_of(poll.client_ip) == network_of(client_ip)
