"""Transcoding AMR <-> G.711 by an external relay (``media.ng_url``: an rtpengine, or an
``lwork relay``), asked for through rtpengine's ng codec options.

**Asking.** An offer whose SDP speaks AMR (an app) carries ``codec: {transcode: [PCMA, PCMU]}``,
one that speaks G.711 (a carrier calling in) ``codec: {transcode: [AMR]}``: the relay adds those
codecs to the SDP it gives the other party, and transcodes when the answer settles on one of
them (`offer_codecs`). rtpengine only adds a codec it can both decode and encode.

**Whether it can.** That last rule makes a probe (`probe`): at start-up lwork offers the relay
a G.711 SDP asking for AMR and an AMR SDP asking for PCMA, and reads the SDPs it gets back.
Debian's rtpengine decodes AMR but cannot encode it (``rtpengine --codecs``: "AMR: supported
for decoding only"): it adds PCMA to the AMR offer but not AMR to the G.711 one, so it could
not give the apps AMR from a G.711 carrier, and lwork offers carriers AMR only. A build with an
AMR encoder (FFmpeg with libopencore-amrnb) passes, and so does an ``lwork relay`` that
transcodes (its ng server honours ``codec.transcode`` the same way).
"""

from __future__ import annotations

import secrets
from typing import Final

from lwork.media.ng import bencode
from lwork.media.ng.client import NgClient, NgError
from lwork.media.sdp_min import build_sdp, parse_sdp

APP_CODEC: Final = "AMR"
G711: Final = ("PCMA", "PCMU")
STATIC: Final = {0: "PCMU", 8: "PCMA"}


def first_codec(sdp: str) -> str | None:
    """The first of AMR, PCMA and PCMU the SDP's audio stream lists; None: none (or no SDP)."""
    try:
        media = parse_sdp(sdp)
    except ValueError:
        return None
    for pt in media.payload_types:
        name = media.rtpmap.get(pt, STATIC.get(pt, "")).split("/")[0].upper()
        if name == APP_CODEC or name in G711:
            return name
    return None


def offer_codecs(sdp: str) -> dict[str, bencode.Encodable] | None:
    """The ng ``codec`` option for an offer of `sdp`: the other side's codecs to add."""
    codec = first_codec(sdp)
    if codec == APP_CODEC:
        return {"transcode": list(G711)}
    if codec in G711:
        return {"transcode": [APP_CODEC]}
    return None


async def probe(ng: NgClient) -> str | None:
    """None when the relay at `ng` transcodes AMR <-> G.711 both ways, else why not."""
    tag = secrets.token_hex(6)
    checks = (
        ("PCMA", build_sdp("127.0.0.1", 9, payload_type=8, encoding="PCMA/8000", fmtp=None)),
        ("AMR", build_sdp("127.0.0.1", 9)),
    )
    for index, (spoken, sdp) in enumerate(checks):
        call_id = f"lwork-transcoding-probe-{tag}-{index}"
        wanted = offer_codecs(sdp)
        assert wanted is not None
        added = wanted["transcode"]
        assert isinstance(added, list)
        try:
            reply = await ng.request({
                "command": "offer", "call-id": call_id, "from-tag": "probe", "sdp": sdp,
                "codec": wanted,
            })  # fmt: skip
        except NgError as exc:
            return f"the relay did not take the probe's offer ({exc})"
        try:
            await ng.request({"command": "delete", "call-id": call_id})
        except NgError:
            pass  # it would forget the unanswered offer by itself
        got = reply.get("sdp")
        if reply.get("result") != "ok" or not isinstance(got, str):
            return f"the relay refused the probe: {reply.get('error-reason', reply)}"
        offered = _codecs(got)
        missing = [str(name) for name in added if str(name) not in offered]
        if missing:
            return (
                f"asked to add {', '.join(missing)} to an offer of {spoken}, it did not "
                "(it cannot both decode and encode it)"
            )
    return None


def _codecs(sdp: str) -> set[str]:
    try:
        media = parse_sdp(sdp)
    except ValueError:
        return set()
    return {
        media.rtpmap.get(pt, STATIC.get(pt, "")).split("/")[0].upper() for pt in media.payload_types
    }
