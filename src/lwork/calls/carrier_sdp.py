"""The codecs lwork speaks with a carrier, and the SDP it offers or answers a carrier with.

Toward the app the codec is always AMR (CONTRACT §6.4). Toward a carrier lwork offers AMR
first, then PCMA and PCMU (and telephone-event), and accepts an inbound offer of G.711 alone,
**when the media path transcodes** (`transcoding`, `CallPolicy.transcoding`: the built-in
relay with `media.transcoding` on and libopencore-amrnb present): most PSTN trunks speak only
G.711. Without it the offer stays AMR only and a carrier's G.711 can only reach the app as
noise: the call engine says so (a warning per call) and the call record keeps the codec the
carrier used.
"""

from __future__ import annotations

from lwork.sip.offer_answer import (
    TELEPHONE_EVENT,
    NoCommonCodec,
    PayloadFormat,
    audio_formats,
    build_answer,
    select_audio,
)
from lwork.sip.sdp import Origin, SessionDescription

APP_FORMATS = (
    PayloadFormat(102, "AMR", 8000, "octet-align=1"),
    PayloadFormat(102, "AMR", 8000, None),
    PayloadFormat(101, TELEPHONE_EVENT, 8000, "0-15"),
)
G711_FORMATS = (PayloadFormat(8, "PCMA"), PayloadFormat(0, "PCMU"))
"""In the order lwork prefers them after AMR: PCMA is Europe's and China's PSTN law."""
G711 = frozenset(fmt.encoding for fmt in G711_FORMATS)


def carrier_formats(*, transcoding: bool) -> tuple[PayloadFormat, ...]:
    """What lwork can carry on a carrier leg whose other party is an app."""
    return APP_FORMATS + G711_FORMATS if transcoding else APP_FORMATS


def offer_for_carrier(relay_sdp: str, *, transcoding: bool) -> str:
    """The offer for the trunk: the relay's (AMR at the relay's address) with, when the media
    path transcodes, PCMA and PCMU after AMR and before telephone-event. ValueError: the relay's
    SDP does not parse or has no audio stream."""
    if not transcoding:
        return relay_sdp
    offer = SessionDescription.parse(relay_sdp)
    media = next((m for m in offer.media if m.media == "audio" and m.port), None)
    if media is None:
        raise ValueError("the relay's SDP has no audio stream")
    events = [fmt for fmt in audio_formats(media) if fmt.encoding.lower() == TELEPHONE_EVENT]
    event_pts = [str(fmt.payload_type) for fmt in events]
    taken = set(media.formats)
    added = [fmt for fmt in G711_FORMATS if str(fmt.payload_type) not in taken]
    codecs = [pt for pt in media.formats if pt not in event_pts]
    media.formats = codecs + [str(fmt.payload_type) for fmt in added] + event_pts
    for fmt in added:
        media.attributes.insert(0, ("rtpmap", f"{fmt.payload_type} {fmt.encoding}/8000"))
    return bytes(offer).decode()


def codecs_we_take(answer_sdp: str, payload_mode_fmtp: str, *, transcoding: bool) -> str:
    """Our answer to an inbound carrier, listing every codec we would take from it in a
    re-INVITE (AMR in the apps' payload format, and G.711 when the media path transcodes),
    for the trunk leg to answer a re-offer from (`sip/trunk/refresh_sdp`): a carrier whose
    first offer was G.711 may move to AMR. ValueError: `answer_sdp` has no audio stream."""
    description = SessionDescription.parse(answer_sdp)
    media = next((m for m in description.media if m.media == "audio" and m.port), None)
    if media is None:
        raise ValueError("our answer has no audio stream")
    events = [f for f in audio_formats(media) if f.encoding.lower() == TELEPHONE_EVENT]
    event = events[0] if events else APP_FORMATS[2]
    formats = [PayloadFormat(102, "AMR", 8000, payload_mode_fmtp)]
    formats += list(G711_FORMATS) if transcoding else []
    formats = [f for f in formats if f.payload_type != event.payload_type] + [event]
    media.formats = [str(f.payload_type) for f in formats]
    media.attributes = [
        (name, value) for name, value in media.attributes if name not in ("rtpmap", "fmtp")
    ]
    for fmt in formats:
        media.attributes.append(("rtpmap", f"{fmt.payload_type} {fmt.encoding}/8000"))
        if fmt.fmtp:
            media.attributes.append(("fmtp", f"{fmt.payload_type} {fmt.fmtp}"))
    return bytes(description).decode()


def chosen_codec(sdp: str) -> str | None:
    """The codec an answer (or a one-codec offer) settles on: the first audio format that is
    not telephone-event, upper case (``AMR``, ``PCMA``, ``PCMU``); None when there is none."""
    try:
        description = SessionDescription.parse(sdp)
        for media in description.media:
            if media.media == "audio" and media.port and "RTP/" in media.proto:
                for fmt in audio_formats(media):
                    if fmt.encoding.lower() != TELEPHONE_EVENT:
                        return fmt.encoding.upper()
                return None
    except ValueError:
        pass
    return None


def answer_for_carrier(
    offer_sdp: str, relay_ip: str, relay_port: int, session_id: int, *, transcoding: bool
) -> str:
    """Our answer to ``offer_sdp``; NoCommonCodec (a ValueError) when it offered nothing
    ``carrier_formats`` has."""
    offer = SessionDescription.parse(offer_sdp)
    selection = select_audio(offer, list(carrier_formats(transcoding=transcoding)))
    family = "IP6" if ":" in relay_ip else "IP4"
    origin = Origin("lwork", str(session_id), "1", relay_ip, addrtype=family)
    answer = build_answer(offer, selection, address=relay_ip, port=relay_port, origin=origin)
    return bytes(answer).decode()


__all__ = [
    "G711",
    "NoCommonCodec",
    "answer_for_carrier",
    "carrier_formats",
    "chosen_codec",
    "codecs_we_take",
    "offer_for_carrier",
]
