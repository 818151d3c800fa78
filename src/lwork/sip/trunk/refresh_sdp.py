"""Our answer to a carrier's re-INVITE or UPDATE offer (RFC 3264 §8): the same address and port
as before, narrowed to the first codec of the new offer that our own SDP of the dialog lists.

A session refresh repeats the codec; a carrier that moves from G.711 to AMR (or back) in a
re-INVITE gets the codec it asked for, and the call engine is told, so that the relay stops
(or starts) transcoding. Our SDP of the dialog is what we offered (outbound) or answered
(inbound): the codecs we agreed to take from this carrier.
"""

from __future__ import annotations

from lwork.sip.offer_answer import audio_formats, build_answer, select_audio
from lwork.sip.sdp import Origin, SessionDescription


def refresh_answer(local_sdp: str, offer_sdp: str, changes: int) -> str | None:
    """The answer to `offer_sdp` at `local_sdp`'s address, its origin version `changes` past
    `local_sdp`'s (one more each time our answer changed: RFC 3264 §8); None when either
    does not parse or they share no codec (the caller then answers with `local_sdp` as it
    is, as before re-negotiation)."""
    try:
        local = SessionDescription.parse(local_sdp)
        offer = SessionDescription.parse(offer_sdp)
    except ValueError:
        return None
    ours = next((m for m in local.media if m.media == "audio" and m.port), None)
    connection = (ours.connection if ours else None) or local.connection
    if ours is None or connection is None:
        return None
    try:
        selection = select_audio(offer, audio_formats(ours))
    except ValueError:
        return None
    origin = local.origin
    origin = Origin(
        origin.username, origin.session_id, str(int(origin.session_version) + changes),
        origin.address,
        origin.nettype, origin.addrtype,
    )  # fmt: skip
    answer = build_answer(
        offer, selection, address=connection.address, port=ours.port, origin=origin,
        session_name=local.session_name,
    )  # fmt: skip
    return bytes(answer).decode()


def first_codec(sdp: str) -> str | None:
    """The first audio codec `sdp` lists (``PCMA/8000``, upper case), telephone-event aside;
    None when it has none or does not parse."""
    try:
        description = SessionDescription.parse(sdp)
    except ValueError:
        return None
    for media in description.media:
        if media.media == "audio" and media.port:
            for fmt in audio_formats(media):
                if fmt.encoding.lower() != "telephone-event":
                    return f"{fmt.encoding.upper()}/{fmt.clock_rate}"
            return None
    return None
