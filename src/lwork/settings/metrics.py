"""Whether the node keeps metrics, and who may read ``/metrics`` (its figures tell a stranger how
busy and how big the service is)."""

from __future__ import annotations

import ipaddress

from pydantic import SecretStr, field_validator

from lwork.settings.sections import Section


class MetricsSettings(Section):
    enabled: bool = True
    """Keep metrics: per-route HTTP latency and answers, call set-up and event-delivery times,
    the labelled counters. ``false``: the hot paths observe nothing (``bench.console_bench``
    measures what that saves on status polls) and ``/metrics`` answers 404
    ``metrics_disabled``; ``/healthz`` and ``/readyz`` stay."""
    token: SecretStr = SecretStr("")
    """Bearer token a scraper may send (``Authorization: Bearer …``) to read ``/metrics`` from
    anywhere. Empty: no token is accepted."""
    allow_from: list[str] = []
    """Addresses or networks (``10.0.0.0/8``, ``192.0.2.7``) that may read ``/metrics`` without
    the token. Loopback is always allowed. Behind a proxy, list the proxy in
    ``http.trusted_proxies`` so the client's own address is checked."""
    public: bool = False
    """Let anyone read ``/metrics``. Production refuses to start with neither a token nor an
    allow-list unless this is set."""

    @field_validator("allow_from")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value
