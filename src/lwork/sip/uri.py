"""SIP and SIPS URIs (RFC 3261 section 19.1): ``sip:user:password@host:port;params?headers``."""

import re
from dataclasses import dataclass, replace

from lwork.sip.grammar import Params, format_params, get_param, parse_params, replace_param

_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
# Unreserved, escaped and user-unreserved characters; no whitespace, quotes or brackets.
_USER_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%&=+$,;?/]+")
_PASSWORD_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%&=+$,]*")
_URI_HEADERS_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%&=+$,;?/:@\[\]]*")


def parse_host_port(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]``; IPv6 references keep their brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unterminated IPv6 reference: {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if not _IPV6_RE.fullmatch(host):
            raise ValueError(f"invalid IPv6 reference: {host!r}")
        if rest and not rest.startswith(":"):
            raise ValueError(f"junk after IPv6 reference: {text!r}")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_part = text.partition(":")
        if not _HOSTNAME_RE.fullmatch(host):
            raise ValueError(f"invalid host: {host!r}")
        port_text = port_part if sep else None
    if port_text is None:
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise ValueError(f"invalid port: {port_text!r}")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port out of range: {port}")
    return host, port


def format_host_port(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI. Parameters keep their order and case for exact output."""

    host: str
    user: str | None = None
    port: int | None = None
    scheme: str = "sip"
    password: str | None = None
    params: Params = ()
    headers: str | None = None

    @classmethod
    def parse(cls, text: str) -> "SipUri":
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips"):
            raise ValueError(f"not a SIP URI: {text[:60]!r}")
        rest, question, headers = rest.partition("?")
        if question and not _URI_HEADERS_RE.fullmatch(headers):
            raise ValueError("invalid URI headers")
        user: str | None = None
        password: str | None = None
        if "@" in rest:
            userinfo, _, rest = rest.partition("@")
            user, has_password, password_text = userinfo.partition(":")
            if not _USER_RE.fullmatch(user):
                raise ValueError(f"invalid user part: {user!r}")
            if has_password:
                if not _PASSWORD_RE.fullmatch(password_text):
                    raise ValueError("invalid password part")
                password = password_text
        host_port, _, param_text = rest.partition(";")
        host, port = parse_host_port(host_port)
        return cls(
            host=host,
            user=user,
            port=port,
            scheme=scheme,
            password=password,
            params=parse_params(param_text),
            headers=headers if question else None,
        )

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user if self.password is None else f"{self.user}:{self.password}"
            userinfo += "@"
        headers = "" if self.headers is None else f"?{self.headers}"
        host_port = format_host_port(self.host, self.port)
        return f"{self.scheme}:{userinfo}{host_port}{format_params(self.params)}{headers}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> "SipUri":
        return replace(self, params=replace_param(self.params, name, value))

    def without_params(self) -> "SipUri":
        """The URI as a Request-URI may carry it: no headers, and no method/maddr/ttl etc."""
        return replace(self, params=(), headers=None)

    @property
    def is_loose_router(self) -> bool:
        return self.param("lr") is not None

    @property
    def transport(self) -> str:
        """Transport named by the ``transport`` parameter, UDP by default (TLS for sips)."""
        value = self.param("transport")
        if value:
            return value.upper()
        return "TLS" if self.scheme == "sips" else "UDP"
