"""SDP rewriting for the relay: put the relay's address and port into c=/m= (and o= on request).

Only what lwork's flows use is supported: the first audio stream is relayed, other media
sections are rejected by setting their port to 0, ICE attributes can be stripped, and
`replace` can rewrite the origin and the session-level connection (rtpengine's
`origin` and `session-connection`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lwork.media.sdp_min import MediaAddress, parse_sdp

ICE_ATTRIBUTES = ("a=ice-", "a=candidate", "a=remote-candidates", "a=end-of-candidates")


@dataclass(frozen=True, slots=True)
class RewriteOptions:
    """What to change besides the audio stream's c= and m= port."""

    replace_origin: bool = False
    replace_session_connection: bool = False
    remove_ice: bool = False
    rtcp_attribute: bool = True


def describe(sdp: str) -> MediaAddress:
    """Parse the audio stream the relay will forward to."""
    return parse_sdp(sdp)


def rewrite(sdp: str, ip: str, port: int, options: RewriteOptions) -> str:
    """Return `sdp` pointing its first audio stream at `ip`:`port` (RTCP on port + 1)."""
    parse_sdp(sdp)  # validates: there is an audio stream to rewrite
    family = "IP6" if ":" in ip else "IP4"
    out: list[str] = []
    section = "session"
    audio_done = False
    had_session_c = False
    for raw in sdp.splitlines():
        line = raw.rstrip("\r")
        if not line:
            continue
        if line.startswith("m="):
            fields = line[2:].split()
            # The stream parse_sdp validated: an "m=audio" line with port and protocol.
            if len(fields) >= 3 and fields[0] == "audio" and not audio_done:
                section = "audio"
                audio_done = True
                fields[1] = str(port)
                line = "m=" + " ".join(fields)
                out.append(line)
                if not (had_session_c and options.replace_session_connection):
                    out.append(f"c=IN {family} {ip}")
                if options.rtcp_attribute:
                    out.append(f"a=rtcp:{port + 1}")
                continue
            section = "other"
            if len(fields) > 1:
                fields[1] = "0"
            line = "m=" + " ".join(fields)
        elif line.startswith("o=") and options.replace_origin:
            fields = line[2:].split()
            if len(fields) >= 6:
                fields[4], fields[5] = family, ip
                line = "o=" + " ".join(fields)
        elif line.startswith("c="):
            if section == "session":
                had_session_c = True
                if options.replace_session_connection:
                    line = f"c=IN {family} {ip}"
            elif section == "audio":
                continue  # replaced right after the m= line
        elif line.startswith("a=rtcp:") and section == "audio":
            continue
        elif options.remove_ice and line.startswith(ICE_ATTRIBUTES):
            continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"
