"""Configuration of the SIP trunk and the E.164 normalisation of the numbers it carries.

Pure module: a frozen ``TrunkConfig`` (one field per operator decision, each documented) and
``normalise_number``, which turns whatever a carrier or an app writes ("0044 20 7946 0000",
"+44 (20) 7946-0000", "02079460000") into ``+442079460000``.
"""

import ipaddress
from dataclasses import dataclass, field

from lwork.sip.offer_answer import PayloadFormat

_VISUAL_SEPARATORS = str.maketrans("", "", " -.()/")
TRANSPORTS = ("udp", "tcp")
# Formats each codec name stands for when we check an offer; AMR in both RFC 4867 framings,
# since an octet-aligned offer only matches an octet-aligned format.
_CODEC_FORMATS = {
    "AMR": (PayloadFormat(96, "AMR"), PayloadFormat(96, "AMR", 8000, "octet-align=1")),
    "AMR-WB": (
        PayloadFormat(97, "AMR-WB", 16000),
        PayloadFormat(97, "AMR-WB", 16000, "octet-align=1"),
    ),
    "PCMU": (PayloadFormat(0, "PCMU"),),
    "PCMA": (PayloadFormat(8, "PCMA"),),
    "G722": (PayloadFormat(9, "G722"),),
    "telephone-event": (PayloadFormat(101, "telephone-event"),),
}
KNOWN_CODECS = tuple(_CODEC_FORMATS)


@dataclass(frozen=True, slots=True)
class NumberRule:
    """Replace a leading ``strip`` by ``add``: ("00", "+") or ("0", "+44")."""

    strip: str
    add: str


def normalise_number(
    raw: str, rules: tuple[NumberRule, ...] = (), default_country_code: str = ""
) -> str:
    """E.164 with a leading '+'; ValueError unless ``raw`` is a telephone number.

    A number already starting with '+' is only cleaned of separators. Otherwise the first
    rule whose prefix matches is applied, and a number still without '+' is taken as national
    and gets ``default_country_code``. URI parameters (";npdi", ";rn=...") are ignored.
    """
    number = raw.split(";", 1)[0].translate(_VISUAL_SEPARATORS)
    if not number.startswith("+"):
        for rule in rules:
            if number.startswith(rule.strip):
                number = rule.add + number[len(rule.strip) :]
                break
    if not number.startswith("+"):
        if not default_country_code:
            raise ValueError(f"national number {raw[:30]!r} and no default country code")
        number = "+" + default_country_code + number
    digits = number[1:]
    if not (digits.isascii() and digits.isdigit()) or not 3 <= len(digits) <= 15:
        raise ValueError(f"not an E.164 number: {raw[:30]!r}")
    return number


@dataclass(frozen=True, slots=True)
class TrunkConfig:
    """Everything the trunk user agent needs to talk to one carrier.

    Times are in seconds. Addresses are IP literals or host names that resolve locally.
    """

    proxy_host: str
    """The carrier's SBC / outbound proxy: every request we send goes there."""
    proxy_port: int = 5060
    listen_host: str = "127.0.0.1"
    """Local address of the SIP socket."""
    listen_port: int = 5060
    """Local port of the SIP socket; 0 picks a free one (tests)."""
    advertised_host: str | None = None
    """Address written in Via and Contact when listening on 0.0.0.0 or behind NAT."""
    transport: str = "udp"
    """'udp' or 'tcp', for both directions."""
    domain: str | None = None
    """Host part of request URIs, From and To; the proxy host when None."""
    registrar: str | None = None
    """``host[:port]`` to REGISTER with; None for IP-authenticated trunks (no REGISTER)."""
    username: str | None = None
    """Digest user name, used for REGISTER and for any 401/407 challenge."""
    password: str | None = None
    """Digest password; whatever realm the carrier challenges with is answered."""
    register_expires: int = 600
    """Expires we ask the registrar for; refreshed at 80 % of what it grants."""
    register_retry_s: float = 30.0
    """Wait after a failed registration before trying again."""
    codecs: tuple[str, ...] = ("AMR", "PCMA", "PCMU", "telephone-event")
    """Audio formats the carrier accepts, in preference order; an inbound offer sharing none
    of them is answered 488 before the call service sees it. Without "telephone-event" the
    call service should send DTMF with ``OutboundCall.send_info_dtmf``."""
    number_rules: tuple[NumberRule, ...] = (NumberRule("00", "+"),)
    """Prefix rewriting towards E.164, first match wins (see ``normalise_number``)."""
    default_country_code: str = ""
    """Country code given to national numbers left without '+' by the rules ("44")."""
    dial_with_plus: bool = True
    """Whether request URIs we send carry '+' in front of the E.164 digits."""
    max_concurrent_calls: int = 100
    """Live calls (both directions) above which dial() raises TrunkBusy and INVITEs get 503."""
    calls_per_second: float = 10.0
    """Sustained rate of outbound INVITEs (token bucket); dial() raises TrunkBusy above it."""
    cps_burst: int | None = None
    """Bucket size: calls that may start back to back; ``ceil(calls_per_second)`` when None."""
    trusted_sources: tuple[str, ...] = ()
    """IP addresses or networks ("192.0.2.0/24") allowed to send us requests; anyone else
    gets 403 and is counted. The proxy host is always trusted when it is an IP literal."""
    options_interval_s: float = 30.0
    """OPTIONS keep-alive period towards the proxy; 0 disables it."""
    provisional_timeout_s: float = 60.0
    """No provisional response to our INVITE within this: give up (failed 408)."""
    ring_timeout_s: float = 120.0
    """No answer within this after the INVITE: CANCEL and failed(408)."""
    user_agent: str = "lwork"
    trunk_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}")
        unknown = [c for c in self.codecs if c not in KNOWN_CODECS]
        if unknown:
            raise ValueError(f"unknown codecs {unknown}")
        if self.calls_per_second <= 0 or self.max_concurrent_calls <= 0:
            raise ValueError("calls_per_second and max_concurrent_calls must be positive")
        networks = [ipaddress.ip_network(text, strict=False) for text in self.trusted_sources]
        try:
            networks.append(ipaddress.ip_network(self.proxy_host))
        except ValueError:
            pass  # a host name: list its addresses in trusted_sources
        object.__setattr__(self, "trunk_networks", tuple(networks))

    @property
    def request_domain(self) -> str:
        return self.domain or self.proxy_host

    @property
    def proxy_address(self) -> tuple[str, int]:
        return self.proxy_host, self.proxy_port

    def is_trusted(self, host: str) -> bool:
        """Whether requests from ``host`` (an IP literal) may reach the call service."""
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.trunk_networks)

    def payload_formats(self) -> list[PayloadFormat]:
        """``codecs`` as payload formats for ``offer_answer.select_audio``."""
        return [fmt for name in self.codecs for fmt in _CODEC_FORMATS[name]]

    def normalise(self, raw: str) -> str:
        return normalise_number(raw, self.number_rules, self.default_country_code)

    def dial_string(self, e164: str) -> str:
        """The user part we put in a request URI for the E.164 number ``e164``."""
        return e164 if self.dial_with_plus else e164.lstrip("+")
