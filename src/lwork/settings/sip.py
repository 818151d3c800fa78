"""Settings of the SIP trunk toward the carrier."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from lwork.settings.sections import Section


class SipSettings(Section):
    enabled: bool = False
    """Connect to a carrier's SIP trunk (calls to and from real phones). Off: such calls fail
    cleanly and app-to-app calls do not fall back."""
    proxy_host: str = "127.0.0.1"
    """The carrier's SIP proxy (or its session border controller)."""
    proxy_port: int = Field(5060, ge=1, le=65535)
    """Its port."""
    transport: Literal["udp", "tcp"] = "udp"
    """Transport toward the carrier."""
    listen_host: str = "127.0.0.1"
    """Address lwork's SIP user agent binds to."""
    listen_port: int = Field(5060, ge=0, le=65535)
    """Its port (0: any free port, for tests)."""
    advertised_host: str = ""
    """Address written into Via/Contact when behind NAT; empty: ``listen_host``."""
    domain: str = ""
    """Host part of request URIs; empty: the proxy host."""
    registrar: str = ""
    """``host[:port]`` to REGISTER with; empty: no registration (IP-authenticated trunk)."""
    username: str = ""
    """Digest user name for REGISTER and challenged INVITEs."""
    password: SecretStr = SecretStr("")
    """Digest password (never logged)."""
    register_expires: int = Field(600, ge=60)
    """Registration lifetime asked for (seconds); refreshed before it runs out."""
    codecs: list[str] = ["AMR", "PCMA", "PCMU", "telephone-event"]
    """Codecs offered and accepted, in preference order."""
    number_rules: list[tuple[str, str]] = [("00", "+")]
    """E.164 normalisation: (prefix to strip, prefix to put instead), first match wins."""
    default_country_code: str = ""
    """Country code for national numbers no rule matched (e.g. 86)."""
    dial_with_plus: bool = True
    """Send numbers as +E.164 (false: digits only)."""
    max_concurrent_calls: int = Field(100, ge=1)
    """SIP calls at once, both directions."""
    calls_per_second: float = Field(10.0, gt=0)
    """Outbound call attempts per second."""
    trusted_sources: list[str] = []
    """Addresses or CIDR ranges allowed to send requests (the proxy is always trusted)."""
    options_interval_s: float = Field(30.0, ge=0)
    """OPTIONS keep-alive toward the proxy (0: off)."""
    ring_timeout_s: float = Field(120.0, gt=0)
    """An outbound call not answered within this long is cancelled."""
    caller_id: Literal["did_else_uuid", "uuid"] = "did_else_uuid"
    """Caller id of outbound calls: the DID bound to the account, else its uuid; or always
    the uuid."""
    inbound_ring_s: float = Field(60.0, gt=0)
    """An inbound call the app has not rung within this long is refused with 480."""
