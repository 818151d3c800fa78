"""Which calls the relay transcodes, read from the two legs' SDPs. Pure.

A leg's codec is the first of AMR, PCMA and PCMU its SDP lists: what an answer settles on,
and what lwork answers an offer with (`select_audio` takes the offerer's first codec it
supports). A leg whose SDP has no address yet (a callback's placeholder for the party not
called yet, c=0.0.0.0) has no codec until its real SDP comes. A call whose one leg is AMR and
whose other is PCMA or PCMU is transcoded (CONTRACT §6.4); every other call (AMR both ways, a
callback between two G.711 phones, a codec lwork does not know) is forwarded as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lwork.media.sdp_min import MediaAddress

G711_STATIC: Final = {0: "PCMU", 8: "PCMA"}


@dataclass(frozen=True, slots=True)
class LegCodec:
    """What one party sends and expects: its codec, payload type and events."""

    encoding: str
    """``AMR``, ``PCMA`` or ``PCMU``."""
    payload_type: int
    octet_aligned: bool = False
    """AMR only: RFC 4867's octet-aligned mode (`octet-align=1`), else bandwidth-efficient."""
    event_pt: int | None = None
    """The RFC 4733 telephone-event payload type, if the party has one."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A transcoded call: the app's leg speaks AMR, the carrier's G.711."""

    app_port: int
    carrier_port: int
    app: LegCodec
    carrier: LegCodec


def leg_codec(media: MediaAddress) -> LegCodec | None:
    """The codec a party's SDP settles on, for transcoding purposes; None: not one we code."""
    event_pt = None
    chosen: tuple[str, int] | None = None
    for pt in media.payload_types:
        encoding = media.rtpmap.get(pt, G711_STATIC.get(pt, ""))
        name = encoding.split("/")[0].upper()
        if name == "TELEPHONE-EVENT":
            event_pt = pt if event_pt is None else event_pt
        elif name in ("AMR", "PCMA", "PCMU") and chosen is None:
            chosen = (name, pt)
    if chosen is None:
        return None
    name, pt = chosen
    octet = name == "AMR" and _octet_aligned(media.fmtp.get(pt, ""))
    return LegCodec(name, pt, octet, event_pt)


def _octet_aligned(fmtp: str) -> bool:
    for parameter in fmtp.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "octet-align":
            return value.strip() == "1"
    return False


def plan(
    first_port: int, first: LegCodec | None, second_port: int, second: LegCodec | None
) -> Plan | None:
    """The transcoding of a call whose legs use `first` and `second`; None: forward it."""
    if first is None or second is None:
        return None
    if first.encoding == "AMR" and second.encoding != "AMR":
        return Plan(first_port, second_port, first, second)
    if second.encoding == "AMR" and first.encoding != "AMR":
        return Plan(second_port, first_port, second, first)
    return None
