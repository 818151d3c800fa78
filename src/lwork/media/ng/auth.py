"""Who may drive the built-in relay over ng: allowed source networks and a signed cookie. Pure.

rtpengine's ng protocol has no authentication; rtpengine relies on its control socket being
private. The built-in relay does the same by default (loopback only) and can also require a
shared secret. The secret never travels: the client signs each request by extending its cookie
with the wall-clock second and an HMAC-SHA256 over that cookie and the request body,
``<cookie>.<unix seconds>.<hmac hex>``. The cookie is opaque to rtpengine (it only echoes it),
so a signing client still works against an rtpengine, and the front of a multi-process relay
can forward requests verbatim. A signature is valid for ``window_s`` either side of the
relay's clock: a captured request replayed within that window gets the reply cache's answer to
the same request (identical bytes), and later it is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable

DEFAULT_WINDOW_S = 30.0
_MAC_HEX = 32  # 128 bits of HMAC-SHA256: ample against forgery, keeps cookies short


def sign_cookie(secret: bytes, cookie: bytes, body: bytes, wall: float) -> bytes:
    """``cookie`` extended with the time and the signature of (cookie, time, body)."""
    stamped = cookie + b".%d" % int(wall)
    return stamped + b"." + _mac(secret, stamped, body)


def verify_cookie(
    secret: bytes, cookie: bytes, body: bytes, wall: float, window_s: float = DEFAULT_WINDOW_S
) -> bool:
    """Whether ``cookie`` carries a valid, fresh signature of ``body`` under ``secret``."""
    stamped, dot, mac = cookie.rpartition(b".")
    _, dot_time, seconds = stamped.rpartition(b".")
    if not dot or not dot_time or not seconds.isdigit() or len(seconds) > 12:
        return False
    if abs(wall - int(seconds)) > window_s:
        return False
    return hmac.compare_digest(mac, _mac(secret, stamped, body))


def _mac(secret: bytes, stamped: bytes, body: bytes) -> bytes:
    digest = hmac.new(secret, stamped + b" " + body, hashlib.sha256).hexdigest()
    return digest[:_MAC_HEX].encode()


class SourcePolicy:
    """The networks ng requests may come from (addresses or CIDR prefixes, IPv4 or IPv6)."""

    def __init__(self, networks: Iterable[str]) -> None:
        # ValueError for a malformed entry: a typo must stop the relay, not open or shut it.
        self.networks = tuple(ipaddress.ip_network(text, strict=False) for text in networks)

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def request_digest(body: bytes) -> bytes:
    """What the reply cache keys a request by, besides its cookie."""
    return hashlib.blake2b(body, digest_size=16).digest()
