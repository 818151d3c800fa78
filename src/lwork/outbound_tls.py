"""Which certificate authorities lwork's own HTTPS requests trust (push providers, SMS
providers, the CDR webhook): the system's store, or the one bundle ``outbound_ca_file`` names.

A private bundle serves an operator whose traffic to the vendors leaves through a TLS-inspecting
egress proxy, and the test suite, whose vendor fakes present certificates from a CA made for
the test run. It replaces the system store rather than adding to it, so a setting that names
a private CA leaves no public CA able to vouch for a vendor's name.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def outbound_tls(ca_file: Path | None) -> ssl.SSLContext:
    """A fresh client context: one per HTTP client, because the HTTP library sets each
    connection's ALPN protocols on the context it is given (HTTP/2 on one client, not on
    another)."""
    if ca_file is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=str(ca_file))
