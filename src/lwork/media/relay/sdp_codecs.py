"""rtpengine's ng ``codec: {transcode: [...]}`` option, as a relay that transcodes AMR <-> G.711
honours it: the offer's SDP toward the other party also lists the named codecs (AMR, PCMA,
PCMU: the ones the transcoding workers code) that it does not list yet, after its own codecs
and before telephone-event. What the answer then settles on decides whether the call is
transcoded (`transcode_plan`). Others (a codec the relay cannot code) are left out, as
rtpengine leaves out a codec it cannot both decode and encode."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from lwork.sip.offer_answer import TELEPHONE_EVENT, audio_formats
from lwork.sip.sdp import SessionDescription

CODECS: Final = {
    "AMR": (102, "AMR/8000", "octet-align=0"),
    "PCMA": (8, "PCMA/8000", None),
    "PCMU": (0, "PCMU/8000", None),
}
"""Each codec the workers code: its usual payload type, rtpmap and fmtp."""


def add_codecs(sdp: str, names: Iterable[str]) -> str:
    """`sdp` whose first audio stream also lists `names` (those of CODECS it lacks); the SDP
    as it was when there is nothing to add. ValueError: it does not parse."""
    description = SessionDescription.parse(sdp)
    media = next((m for m in description.media if m.media == "audio" and m.port), None)
    if media is None:
        return sdp
    formats = audio_formats(media)
    present = {fmt.encoding.upper() for fmt in formats}
    events = [str(f.payload_type) for f in formats if f.encoding.lower() == TELEPHONE_EVENT]
    taken = set(media.formats)
    added: list[str] = []
    for name in dict.fromkeys(name.upper() for name in names):
        if name not in CODECS or name in present:
            continue
        pt, rtpmap, fmtp = CODECS[name]
        if str(pt) in taken:
            free = next((n for n in range(96, 128) if str(n) not in taken), None)
            if free is None:
                continue
            pt = free
        taken.add(str(pt))
        added.append(str(pt))
        media.attributes.append(("rtpmap", f"{pt} {rtpmap}"))
        if fmtp:
            media.attributes.append(("fmtp", f"{pt} {fmtp}"))
    if not added:
        return sdp
    codecs = [pt for pt in media.formats if pt not in events]
    media.formats = codecs + added + events
    return bytes(description).decode()
