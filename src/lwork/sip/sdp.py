"""Session descriptions (RFC 4566): parse and serialise.

Lines are kept in their RFC order (v o s i u e p c b t r z k a, media: m i c b k a), which is
the order compliant peers write, so a compliant description serialises back byte for byte.
"""

from dataclasses import dataclass, field

_SESSION_ORDER = "vosiuepcbtrzka"
_MEDIA_ORDER = "micbka"
Attribute = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> IN IP4 <address>``."""

    username: str
    session_id: str
    session_version: str
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    @classmethod
    def parse(cls, value: str) -> "Origin":
        parts = value.split(" ")
        if len(parts) != 6 or not parts[1].isdigit() or not parts[2].isdigit():
            raise ValueError(f"invalid origin {value[:60]!r}")
        return cls(parts[0], parts[1], parts[2], parts[5], parts[3], parts[4])

    def __str__(self) -> str:
        fields = (self.username, self.session_id, self.session_version)
        return " ".join((*fields, self.nettype, self.addrtype, self.address))


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=IN IP4 <address>``."""

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    @classmethod
    def parse(cls, value: str) -> "Connection":
        parts = value.split(" ")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"invalid connection {value[:60]!r}")
        return cls(parts[2], parts[0], parts[1])

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]``."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int = 1


@dataclass(slots=True)
class _Described:
    """Lines shared by session and media level: attributes and the rarely used rest."""

    connection: Connection | None = None
    bandwidths: list[str] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """First value of attribute ``name``; '' for a flag such as ``a=sendrecv``."""
        return next((value or "" for key, value in self.attributes if key == name), None)

    def attribute_values(self, name: str) -> list[str]:
        return [value or "" for key, value in self.attributes if key == name]

    def _lines(self, order: str, own: list[tuple[str, str]]) -> list[tuple[str, str]]:
        lines = list(own) + list(self.extra)
        if self.connection is not None:
            lines.append(("c", str(self.connection)))
        lines += [("b", bandwidth) for bandwidth in self.bandwidths]
        lines += [
            ("a", name if value is None else f"{name}:{value}") for name, value in self.attributes
        ]
        return sorted(lines, key=lambda line: order.index(line[0]))  # stable: keeps repeats

    def _take(self, kind: str, value: str) -> None:
        if kind == "c":
            self.connection = Connection.parse(value)
        elif kind == "b":
            self.bandwidths.append(value)
        elif kind == "a":
            name, colon, attr_value = value.partition(":")
            if not name:
                raise ValueError("empty attribute name")
            self.attributes.append((name, attr_value if colon else None))
        else:
            self.extra.append((kind, value))


@dataclass(slots=True)
class MediaDescription(_Described):
    """One ``m=`` section."""

    media: str = "audio"
    port: int = 0
    proto: str = "RTP/AVP"
    formats: list[str] = field(default_factory=list)
    port_count: int | None = None

    @classmethod
    def from_m_line(cls, value: str) -> "MediaDescription":
        parts = value.split(" ")
        if len(parts) < 4 or not all(parts):
            raise ValueError(f"invalid media line {value[:60]!r}")
        port_text, slash, count_text = parts[1].partition("/")
        if (
            not port_text.isdigit()
            or int(port_text) > 65535
            or (slash and not count_text.isdigit())
        ):
            raise ValueError(f"invalid media port {parts[1][:20]!r}")
        return cls(
            media=parts[0],
            port=int(port_text),
            proto=parts[2],
            formats=parts[3:],
            port_count=int(count_text) if slash else None,
        )

    def m_line(self) -> str:
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        return " ".join([self.media, port, self.proto, *self.formats])

    def lines(self) -> list[tuple[str, str]]:
        return self._lines(_MEDIA_ORDER, [("m", self.m_line())])

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        for value in self.attribute_values("rtpmap"):
            pt, _, mapping = value.partition(" ")
            if pt == str(payload_type):
                parts = mapping.split("/")
                if (
                    len(parts) < 2
                    or not parts[1].isdigit()
                    or (len(parts) > 2 and not parts[2].isdigit())
                ):
                    raise ValueError(f"invalid rtpmap {value[:60]!r}")
                channels = int(parts[2]) if len(parts) > 2 else 1
                return RtpMap(payload_type, parts[0], int(parts[1]), channels)
        return None

    def fmtp(self, payload_type: int) -> str | None:
        for value in self.attribute_values("fmtp"):
            pt, _, params = value.partition(" ")
            if pt == str(payload_type):
                return params.strip()
        return None

    @property
    def direction(self) -> str:
        for name, value in self.attributes:
            if value is None and name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                return name
        return "sendrecv"


@dataclass(slots=True)
class SessionDescription(_Described):
    """A whole SDP body."""

    origin: Origin = field(default_factory=lambda: Origin("-", "0", "0", "0.0.0.0"))
    session_name: str = "-"
    timing: list[tuple[str, str]] = field(default_factory=lambda: [("t", "0 0")])
    media: list[MediaDescription] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes | str) -> "SessionDescription":
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
        except UnicodeDecodeError as exc:
            raise ValueError("SDP is not UTF-8") from exc
        lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
        if not lines or lines[0] != "v=0":
            raise ValueError("SDP must start with v=0")
        session = cls(timing=[])
        seen_origin = seen_name = False
        current: _Described = session
        for line in lines[1:]:
            kind, equals, value = line.partition("=")
            if len(kind) != 1 or not equals or kind not in _SESSION_ORDER + "m":
                raise ValueError(f"invalid SDP line {line[:60]!r}")
            if kind == "m":
                media = MediaDescription.from_m_line(value)
                session.media.append(media)
                current = media
            elif current is not session and kind not in _MEDIA_ORDER:
                raise ValueError(f"{kind}= line not allowed in a media section")
            elif kind == "o":
                session.origin, seen_origin = Origin.parse(value), True
            elif kind == "s":
                session.session_name, seen_name = value, True
            elif kind in "tr":
                session.timing.append((kind, value))
            elif kind == "v":
                raise ValueError("repeated v= line")
            else:
                current._take(kind, value)
        if not (seen_origin and seen_name and session.timing):
            raise ValueError("SDP lacks o=, s= or t=")
        return session

    def __bytes__(self) -> bytes:
        own = [("v", "0"), ("o", str(self.origin)), ("s", self.session_name), *self.timing]
        lines = self._lines(_SESSION_ORDER, own)
        for media in self.media:
            lines += media.lines()
        return "".join(f"{kind}={value}\r\n" for kind, value in lines).encode()
