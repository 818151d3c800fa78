"""The SDP lwork answers a carrier's offer with: the relay's address, the offer's numbering.

The relay forwards packets as they are, so the answer picks a codec the carrier offered that the
apps speak (AMR, either packing) and keeps the offer's payload-type numbers (RFC 3264 §6.1).
"""

from __future__ import annotations

from lwork.sip.offer_answer import (
    TELEPHONE_EVENT,
    NoCommonCodec,
    PayloadFormat,
    build_answer,
    select_audio,
)
from lwork.sip.sdp import Origin, SessionDescription

APP_FORMATS = (
    PayloadFormat(102, "AMR", 8000, "octet-align=1"),
    PayloadFormat(102, "AMR", 8000, None),
    PayloadFormat(101, TELEPHONE_EVENT, 8000, "0-15"),
)


def answer_for_carrier(offer_sdp: str, relay_ip: str, relay_port: int, session_id: int) -> str:
    """Our answer to ``offer_sdp``; NoCommonCodec (a ValueError) when it offered no AMR."""
    offer = SessionDescription.parse(offer_sdp)
    selection = select_audio(offer, list(APP_FORMATS))
    family = "IP6" if ":" in relay_ip else "IP4"
    origin = Origin("lwork", str(session_id), "1", relay_ip, addrtype=family)
    answer = build_answer(offer, selection, address=relay_ip, port=relay_port, origin=origin)
    return bytes(answer).decode()


__all__ = ["NoCommonCodec", "answer_for_carrier"]
