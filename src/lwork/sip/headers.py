"""SIP header names, the ordered header list and the structured header values.

Header lines are stored as received (name canonicalised, value verbatim) so that a canonical
message serialises back to the same bytes; structured values are parsed on demand.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from lwork.sip.grammar import (
    Params,
    format_params,
    get_param,
    is_token,
    parse_params,
    quote,
    replace_param,
    require_token,
    split_outside_quotes,
    unquote,
)
from lwork.sip.uri import SipUri, format_host_port, parse_host_port

_CANONICAL_NAMES = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Diversion", "Error-Info", "Event", "Expires", "From",
    "Identity", "In-Reply-To", "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version",
    "Organization", "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Priority", "Privacy",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason",
    "Record-Route", "Refer-To", "Referred-By", "Reject-Contact", "Remote-Party-ID", "Reply-To",
    "Request-Disposition", "Require", "Retry-After", "Route", "RSeq", "Server",
    "Session-Expires", "Subject", "Subscription-State", "Supported", "Timestamp", "To",
    "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
]  # fmt: skip

# RFC 3261 section 7.3.3 plus the compact forms registered later (RFC 3265, 3515, 3841, 4028).
_COMPACT_FORMS = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "o": "Event", "r": "Refer-To", "s": "Subject",
    "t": "To", "u": "Allow-Events", "v": "Via", "x": "Session-Expires", "y": "Identity",
}  # fmt: skip

# "SIP / 2.0 / UDP" with optional whitespace around the slashes (RFC 3261 20.42).
_VIA_PROTOCOL_RE = re.compile(
    r"\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+", re.IGNORECASE
)
_BY_LOWER = {name.lower(): name for name in _CANONICAL_NAMES} | _COMPACT_FORMS


def canonical_name(name: str) -> str:
    """Long form in canonical case for known headers; unknown names are kept as written."""
    require_token(name, "header name")
    return _BY_LOWER.get(name.lower(), name)


class Headers:
    """Ordered multi-map of header lines with case-insensitive lookup."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not is_token(name):
            return False
        return self.get(name) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> "Headers":
        return Headers(self._items)

    def get(self, name: str) -> str | None:
        wanted = canonical_name(name)
        return next((value for key, value in self._items if key == wanted), None)

    def get_all(self, name: str) -> list[str]:
        """Every line of ``name``, unsplit."""
        wanted = canonical_name(name)
        return [value for key, value in self._items if key == wanted]

    def get_list(self, name: str) -> list[str]:
        """Every element of a comma-separated list header, across all of its lines."""
        elements: list[str] = []
        for line in self.get_all(name):
            elements.extend(part.strip() for part in split_outside_quotes(line, ","))
        return [element for element in elements if element]  # "Supported:" may be empty

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace all lines of ``name`` by one, at the position of the first."""
        wanted = canonical_name(name)
        for index, (key, _) in enumerate(self._items):
            if key == wanted:
                self._items[index] = (key, value)
                self._items = [
                    item for i, item in enumerate(self._items) if i <= index or item[0] != wanted
                ]
                return
        self._items.append((wanted, value))

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first line of ``name`` in place, leaving later lines alone."""
        wanted = canonical_name(name)
        for index, (key, _) in enumerate(self._items):
            if key == wanted:
                self._items[index] = (key, value)
                return
        raise KeyError(name)

    def remove(self, name: str) -> None:
        wanted = canonical_name(name)
        self._items = [item for item in self._items if item[0] != wanted]


@dataclass(frozen=True, slots=True)
class Via:
    """One Via entry: ``SIP/2.0/UDP host:port;branch=...;received=...;rport=...``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> "Via":
        match = _VIA_PROTOCOL_RE.match(text)
        if match is None:
            raise ValueError(f"invalid Via: {text[:60]!r}")
        transport = match.group(1).upper()
        sent_by, _, param_text = text[match.end() :].strip().partition(";")
        host, port = parse_host_port(sent_by.strip())
        return cls(transport, host, port, parse_params(param_text))

    def __str__(self) -> str:
        host_port = format_host_port(self.host, self.port)
        return f"SIP/2.0/{self.transport} {host_port}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> "Via":
        return replace(self, params=replace_param(self.params, name, value))

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def rport(self) -> int | None:
        """The rport value filled in by the server; None when absent or still a bare flag."""
        value = self.param("rport")
        return int(value) if value and value.isdigit() else None

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host.lower(), self.port


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``"Display" <uri>;params`` as in From, To, Contact, Route and Record-Route."""

    uri: SipUri
    display_name: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> "NameAddr":
        text = text.strip()
        display: str | None = None
        if text.startswith('"'):
            end = _closing_quote(text)
            display = unquote(text[: end + 1])
            text = text[end + 1 :].lstrip()
            if not text.startswith("<"):
                raise ValueError("quoted display name must be followed by <uri>")
        if "<" in text:
            before, _, rest = text.partition("<")
            if before.strip():
                display = " ".join(before.split())
            uri_text, closed, rest = rest.partition(">")
            if not closed:
                raise ValueError("unterminated <uri>")
            rest = rest.strip()
            if rest and not rest.startswith(";"):
                raise ValueError("junk after <uri>")
            param_text = rest[1:]
        else:
            # addr-spec form: parameters after the URI belong to the header (RFC 3261 20.10).
            uri_text, _, param_text = text.partition(";")
        return cls(SipUri.parse(uri_text.strip()), display, parse_params(param_text))

    def __str__(self) -> str:
        display = "" if self.display_name is None else f"{quote(self.display_name)} "
        return f"{display}<{self.uri}>{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    @property
    def tag(self) -> str | None:
        return self.param("tag") or None

    def with_tag(self, tag: str) -> "NameAddr":
        return replace(self, params=replace_param(self.params, "tag", tag))


def _closing_quote(text: str) -> int:
    escaped = False
    for index in range(1, len(text)):
        char = text[index]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return index
    raise ValueError("unterminated display name")


@dataclass(frozen=True, slots=True)
class CSeq:
    """``CSeq: 314159 INVITE``."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> "CSeq":
        parts = text.split()
        if len(parts) != 2 or not parts[0].isascii() or not parts[0].isdigit():
            raise ValueError(f"invalid CSeq: {text!r}")
        seq = int(parts[0])
        if seq >= 2**31:
            raise ValueError("CSeq number out of range")
        return cls(seq, require_token(parts[1], "CSeq method"))

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
