"""The pure rules of CONTRACT §3 for token-less requests (``accounts/authorization.py``)."""

from __future__ import annotations

from lwork.accounts.authorization import (
    DEVICE,
    DEVICE_AND_POLL,
    POLL,
    PollSeen,
    device_matches,
    from_poll_network,
    network_of,
)


def test_networks_are_ipv4_addresses_and_ipv6_64s() -> None:
    assert network_of("203.0.113.7") == "203.0.113.7"
    assert network_of("::ffff:203.0.113.7") == "203.0.113.7"
    assert (
        network_of("2001:db8:1:2:aaaa::1")
        == network_of("2001:DB8:1:2::ffff")
        == ("2001:db8:1:2::/64")
    )
    assert network_of("2001:db8:1:3::1") != network_of("2001:db8:1:2::1")
    assert network_of("not an address") == "not an address"


def test_the_poll_vouches_for_its_network_within_the_window() -> None:
    seen = PollSeen(1000.0, "2001:db8:1:2::10")
    assert from_poll_network(seen, "2001:db8:1:2::99", 1100.0, 180.0)
    assert not from_poll_network(seen, "2001:db8:1:3::10", 1100.0, 180.0)
    assert not from_poll_network(seen, "2001:db8:1:2::10", 1181.0, 180.0)  # too old
    v4 = PollSeen(1000.0, "198.51.100.4")
    assert from_poll_network(v4, "198.51.100.4", 1000.0, 180.0)
    assert not from_poll_network(v4, "198.51.100.5", 1000.0, 180.0)  # same /24 is not enough
    assert not from_poll_network(PollSeen(None, None), "198.51.100.4", 1000.0, 180.0)


def test_a_route_with_a_device_id_needs_it() -> None:
    assert not device_matches(DEVICE, None, "A")
    assert not device_matches(DEVICE_AND_POLL, None, "A")
    assert device_matches(POLL, None, "A")  # the contract gives the route none
    assert not device_matches(POLL, "B", "A")  # but one sent anyway must match
    assert device_matches(DEVICE, "A", "A") and not device_matches(DEVICE, "a", "A")
