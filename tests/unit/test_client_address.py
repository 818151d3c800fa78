from __future__ import annotations

import pytest

from lwork.addresses import limit_key
from lwork.http.client_address import ClientAddress

PROXIES = ClientAddress(["10.0.0.0/8", "2001:db8:ffff::/48"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("198.51.100.1", ["6.6.6.6"], "198.51.100.1"),  # not a proxy: its header is ignored
        ("10.0.0.5", ["6.6.6.6, 198.51.100.2"], "198.51.100.2"),
        ("10.0.0.5", ["6.6.6.6, 198.51.100.2, 10.1.1.1"], "198.51.100.2"),
        ("10.0.0.5", ["6.6.6.6", "198.51.100.2"], "198.51.100.2"),  # two headers, in order
        ("10.0.0.5", ["10.2.2.2, 10.1.1.1"], "10.2.2.2"),  # all trusted: the leftmost
        ("10.0.0.5", ["bogus, 10.1.1.1"], "10.1.1.1"),  # unreadable: the last trusted hop
        ("10.0.0.5", [""], "10.0.0.5"),
        ("10.0.0.5", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("10.0.0.5", ["198.51.100.3:5060"], "198.51.100.3"),
        ("10.0.0.5", ["::ffff:198.51.100.4"], "198.51.100.4"),
        ("10.0.0.5", ["fe80::1%eth0"], "fe80::1"),
        ("2001:db8:ffff::1", ["2001:db8:1::9"], "2001:db8:1::9"),
    ],
)
def test_client_is_the_rightmost_untrusted_hop(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert PROXIES.client(peer, forwarded) == client


def test_limit_key_groups_an_ipv6_slash_64() -> None:
    assert limit_key("2001:db8:1:2::1") == limit_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("198.51.100.7") == "198.51.100.7"
