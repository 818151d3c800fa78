"""Identifiers and transaction matching keys."""

import pytest

from lwork.sip.ids import BRANCH_MAGIC_COOKIE, new_branch, new_call_id, new_cnonce, new_tag
from lwork.sip.matching import TransactionKey, client_key, server_key
from lwork.sip.transaction_layer import TransactionLayer

from sip_helpers import UAC_ADDRESS, make_request


def test_identifiers_are_random_and_well_formed() -> None:
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100
    assert all(b.startswith(BRANCH_MAGIC_COOKIE) and len(b) > 16 for b in branches)
    assert len({new_tag() for _ in range(100)}) == 100
    assert new_call_id("198.51.100.7").endswith("@198.51.100.7")
    assert "@" not in new_call_id()
    assert new_cnonce() != new_cnonce()


def test_ack_matches_the_invite_and_cancel_does_not() -> None:
    invite = make_request("INVITE", branch="z9hG4bKk1")
    ack = make_request("ACK", branch="z9hG4bKk1")
    cancel = make_request("CANCEL", branch="z9hG4bKk1")
    assert client_key(invite) == client_key(ack) == TransactionKey("z9hG4bKk1", "INVITE")
    assert (
        server_key(ack)
        == server_key(invite)
        == TransactionKey("z9hG4bKk1", "INVITE", "198.51.100.7:5060")
    )
    assert server_key(cancel).method == "CANCEL"


def test_server_key_separates_equal_branches_from_different_senders() -> None:
    first = make_request("OPTIONS", branch="z9hG4bKsame")
    second = make_request("OPTIONS", branch="z9hG4bKsame")
    second.headers.set("Via", "SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKsame")
    assert server_key(first) != server_key(second)
    layer = TransactionLayer()
    layer.receive_request(first, UAC_ADDRESS, reliable=False, now=0.0)
    layer.receive_request(second, ("192.0.2.99", 5060), reliable=False, now=0.0)
    assert len(layer) == 2


def test_requests_without_branch_cannot_be_matched() -> None:
    request = make_request("OPTIONS")
    request.headers.set("Via", "SIP/2.0/UDP 198.51.100.7:5060")
    with pytest.raises(ValueError):
        client_key(request)
    with pytest.raises(ValueError):
        server_key(request)
    with pytest.raises(ValueError):
        TransactionLayer().receive_request(request, UAC_ADDRESS, reliable=False, now=0.0)
