"""SIP requests and responses (RFC 3261 section 7): parse and serialise.

``parse_message`` takes one whole message (a UDP datagram, or a frame cut by
``SipStreamParser``). Parsing checks the start line, every header line, the headers that every
request and response must carry (Via, From, To, Call-ID, CSeq) and the Content-Length framing,
so code above can read those fields without guarding against parse errors again.
"""

from dataclasses import dataclass, field

from lwork.sip.grammar import is_token
from lwork.sip.headers import CSeq, Headers, NameAddr, Via
from lwork.sip.uri import SipUri

SIP_VERSION = "SIP/2.0"


@dataclass(frozen=True, slots=True)
class SipLimits:
    """Bounds on what a peer can make us hold in memory."""

    max_message_size: int = 65_535
    max_headers: int = 128


DEFAULT_LIMITS = SipLimits()


@dataclass(slots=True)
class SipMessage:
    """What requests and responses share: headers, body and typed accessors."""

    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        # Content-Length always tells the truth about the body we actually send.
        headers = self.headers.copy()
        headers.set("Content-Length", str(len(self.body)))
        lines = [self.start_line(), *(f"{name}: {value}" for name, value in headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    @property
    def call_id(self) -> str:
        return _required(self.headers, "Call-ID")

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(_required(self.headers, "CSeq"))

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(value) for value in self.headers.get_list("Via")]

    @property
    def top_via(self) -> Via:
        vias = self.headers.get_list("Via")
        if not vias:
            raise ValueError("missing Via")
        return Via.parse(vias[0])

    @property
    def from_addr(self) -> NameAddr:
        return NameAddr.parse(_required(self.headers, "From"))

    @property
    def to_addr(self) -> NameAddr:
        return NameAddr.parse(_required(self.headers, "To"))

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact entries; empty for none and for the REGISTER wildcard ``*``."""
        values = self.headers.get_list("Contact")
        if values == ["*"]:
            return []
        return [NameAddr.parse(value) for value in values]

    @property
    def record_routes(self) -> list[NameAddr]:
        return [NameAddr.parse(value) for value in self.headers.get_list("Record-Route")]

    @property
    def routes(self) -> list[NameAddr]:
        return [NameAddr.parse(value) for value in self.headers.get_list("Route")]

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return None if value is None else value.split(";")[0].strip().lower()

    def validate(self) -> None:
        """Raise ValueError unless the mandatory headers are present and well formed."""
        if not self.headers.get_list("Via"):
            raise ValueError("missing Via")
        for via in self.headers.get_list("Via"):
            Via.parse(via)
        for name in ("From", "To", "Call-ID", "CSeq"):
            if len(self.headers.get_all(name)) != 1:
                raise ValueError(f"need exactly one {name} header")
        NameAddr.parse(_required(self.headers, "From"))
        NameAddr.parse(_required(self.headers, "To"))
        CSeq.parse(_required(self.headers, "CSeq"))
        if not self.call_id:
            raise ValueError("empty Call-ID")


@dataclass(slots=True, kw_only=True)
class SipRequest(SipMessage):
    """``METHOD uri SIP/2.0`` plus headers and body."""

    method: str
    uri: SipUri

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"

    def validate(self) -> None:
        SipMessage.validate(self)
        if self.cseq.method != self.method:
            raise ValueError("CSeq method does not match the request method")


@dataclass(slots=True, kw_only=True)
class SipResponse(SipMessage):
    """``SIP/2.0 code reason`` plus headers and body."""

    status_code: int
    reason: str

    def start_line(self) -> str:
        return f"{SIP_VERSION} {self.status_code} {self.reason}"

    @property
    def is_provisional(self) -> bool:
        return self.status_code < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


def _required(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise ValueError(f"missing {name}")
    return value


def find_head_end(data: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """Where the headers end and the body starts, searching from ``start``; None if not yet."""
    found = [
        (pos, pos + size)
        for pos, size in ((data.find(b"\r\n\r\n", start), 4), (data.find(b"\n\n", start), 2))
        if pos >= 0
    ]
    return min(found) if found else None


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Cut ``data`` at the empty line that ends the headers; None when it is not there yet."""
    end = find_head_end(data)
    if end is None:
        return None
    return data[: end[0]], data[end[1] :]


def parse_head(head: bytes, limits: SipLimits = DEFAULT_LIMITS) -> SipMessage:
    """Parse start line and headers (no body, no validation)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("SIP header block is not UTF-8") from exc
    lines = text.replace("\r\n", "\n").split("\n")
    message = _parse_start_line(lines[0])
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip()  # RFC 3261 7.3.1 line folding
        else:
            unfolded.append(line)
    if len(unfolded) > limits.max_headers:
        raise ValueError(f"more than {limits.max_headers} header lines")
    for line in unfolded:
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"header line without colon: {line[:40]!r}")
        if any(ord(c) < 32 and c != "\t" for c in value):
            raise ValueError("control character in header value")
        message.headers.add(name.rstrip(" \t"), value.strip(" \t"))
    return message


def _parse_start_line(line: str) -> SipMessage:
    if line.startswith("SIP/"):
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version != SIP_VERSION:
            raise ValueError(f"unsupported version {version[:20]!r}")
        if len(code) != 3 or not code.isascii() or not code.isdigit() or code[0] not in "123456":
            raise ValueError(f"invalid status code {code[:20]!r}")
        if any(ord(c) < 32 and c != "\t" for c in reason):
            raise ValueError("control character in reason phrase")
        return SipResponse(status_code=int(code), reason=reason)
    parts = line.split(" ")
    if len(parts) != 3 or not is_token(parts[0]) or parts[2] != SIP_VERSION:
        raise ValueError(f"invalid request line {line[:60]!r}")
    return SipRequest(method=parts[0], uri=SipUri.parse(parts[1]))


def content_length(message: SipMessage) -> int | None:
    values = {value.strip() for value in message.headers.get_all("Content-Length")}
    if not values:
        return None
    if len(values) != 1:
        raise ValueError("conflicting Content-Length headers")
    value = values.pop()
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise ValueError(f"invalid Content-Length {value[:20]!r}")
    return int(value)


def parse_message(data: bytes, limits: SipLimits = DEFAULT_LIMITS) -> SipRequest | SipResponse:
    """Parse one message from a datagram: Content-Length, if given, cuts the body."""
    if len(data) > limits.max_message_size:
        raise ValueError("message too large")
    parts = split_head(data.lstrip(b"\r\n"))
    if parts is None:
        raise ValueError("no end of headers")
    head, body = parts
    message = parse_head(head, limits)
    length = content_length(message)
    if length is not None:
        if length > len(body):
            raise ValueError("body shorter than Content-Length")
        body = body[:length]  # RFC 3261 18.3: bytes past Content-Length are discarded
    message.body = body
    message.validate()
    assert isinstance(message, SipRequest | SipResponse)
    return message
