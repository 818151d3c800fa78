"""The minimal audio SDP that lwork exchanges with the media relay.

Apps describe their media as an IP and a port; lwork wraps that in a one-stream SDP for
`offer`/`answer` and reads the relay's address back from the rewritten SDP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

AMR_PAYLOAD_TYPE = 102


@dataclass(frozen=True, slots=True)
class MediaAddress:
    """The first audio stream of an SDP: where to send RTP (RTCP goes to port + 1)."""

    ip: str
    port: int
    payload_types: tuple[int, ...]
    rtpmap: dict[int, str]
    fmtp: dict[int, str] = field(default_factory=dict)
    """`a=fmtp` parameters by payload type (AMR's octet-align decides its payload format)."""


def build_sdp(
    ip: str,
    port: int,
    *,
    payload_type: int = AMR_PAYLOAD_TYPE,
    encoding: str = "AMR/8000",
    fmtp: str | None = "octet-align=0",
    session_id: int = 1,
    telephone_event_pt: int | None = 101,
) -> str:
    """An SDP offering one audio stream at `ip`:`port`."""
    family = "IP6" if ":" in ip else "IP4"
    pts = [str(payload_type)] + (
        [str(telephone_event_pt)] if telephone_event_pt is not None else []
    )
    lines = [
        "v=0",
        f"o=lwork {session_id} 1 IN {family} {ip}",
        "s=lwork",
        f"c=IN {family} {ip}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(pts)}",
        f"a=rtpmap:{payload_type} {encoding}",
    ]
    if fmtp:
        lines.append(f"a=fmtp:{payload_type} {fmtp}")
    if telephone_event_pt is not None:
        lines.append(f"a=rtpmap:{telephone_event_pt} telephone-event/8000")
        lines.append(f"a=fmtp:{telephone_event_pt} 0-15")
    lines += ["a=ptime:20", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"


def parse_sdp(sdp: str) -> MediaAddress:
    """Extract the first audio stream's connection address and port; ValueError if absent."""
    session_ip: str | None = None
    media_ip: str | None = None
    port: int | None = None
    pts: tuple[int, ...] = ()
    rtpmap: dict[int, str] = {}
    fmtp: dict[int, str] = {}
    in_audio = False
    seen_audio = False
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if seen_audio:
                in_audio = False
                continue
            fields = line[2:].split()
            in_audio = len(fields) >= 3 and fields[0] == "audio"
            if in_audio:
                seen_audio = True
                port = _int(fields[1], "port")
                pts = tuple(_int(f, "payload type") for f in fields[3:] if f.isdigit())
        elif line.startswith("c="):
            fields = line[2:].split()
            if len(fields) < 3:
                raise ValueError("SDP: malformed c= line")
            address = fields[2].split("/")[0]
            if in_audio:
                media_ip = address
            elif not seen_audio:
                session_ip = address
        elif in_audio and line.startswith("a=rtpmap:"):
            head, _, encoding = line[len("a=rtpmap:") :].partition(" ")
            if head.isdigit() and encoding:
                rtpmap[int(head)] = encoding
        elif in_audio and line.startswith("a=fmtp:"):
            head, _, parameters = line[len("a=fmtp:") :].partition(" ")
            if head.isdigit():
                fmtp[int(head)] = parameters.strip()
    ip = media_ip or session_ip
    if port is None or ip is None:
        raise ValueError("SDP: no audio stream with a connection address")
    if not 0 <= port <= 65535:
        raise ValueError("SDP: port out of range")
    return MediaAddress(ip=ip, port=port, payload_types=pts, rtpmap=rtpmap, fmtp=fmtp)


def _int(text: str, what: str) -> int:
    if not text.isdigit() or len(text) > 6:
        raise ValueError(f"SDP: bad {what} {text!r}")
    return int(text)
