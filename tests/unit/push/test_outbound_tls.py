"""``outbound_ca_file``: which CAs the push and SMS providers trust."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from lwork.outbound_tls import outbound_tls
from lwork.settings import Settings

from fakes.tls import lwork_ca


def test_unset_means_the_system_store_with_full_verification() -> None:
    assert Settings().outbound_ca_file is None
    context = outbound_tls(None)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    system = ssl.create_default_context()
    assert len(context.get_ca_certs()) == len(system.get_ca_certs())


def test_a_bundle_replaces_the_system_store() -> None:
    ca = lwork_ca()
    settings = Settings(outbound_ca_file=ca.ca_file)
    context = outbound_tls(settings.outbound_ca_file)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    [only] = context.get_ca_certs()
    assert dict(pair[0] for pair in only["subject"])["commonName"] == "lwork lwork test CA"


def test_a_missing_bundle_stops_the_server_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="outbound_ca_file"):
        Settings(outbound_ca_file=tmp_path / "nowhere.pem")


def test_each_client_gets_its_own_context() -> None:
    # httpx sets ALPN (h2 or not) on the context it is given: one shared by the HTTP/1.1 and
    # the HTTP/2 clients would be changed under the other.
    assert outbound_tls(None) is not outbound_tls(None)
