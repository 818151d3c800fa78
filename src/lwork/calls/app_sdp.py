"""The SDP lwork gives the relay for an app's leg. The apps send no SDP: their codec is AMR
(payload type 102, CONTRACT §6.4) in the RFC 4867 payload format the operator tells them with
``calls.payload_mode``. The same setting goes into the leg's ``a=fmtp`` (``octet-align``), so
that a transcoding relay reads and writes the app's AMR in that format rather than guessing it
from the packets' sizes, and an offer toward a carrier names it.
"""

from __future__ import annotations

from typing import Final

from lwork.media.sdp_min import build_sdp

OCTET_ALIGNED: Final = {"normal": False, "bandwidth-efficient": False, "octet-aligned": True}
"""``calls.payload_mode`` -> whether the apps' AMR is octet-aligned. ``normal``, what the
original told the apps, is RFC 4867's default format: bandwidth-efficient."""


def app_fmtp(payload_mode: str) -> str:
    """The AMR ``a=fmtp`` parameters of an app leg (the settings allow only the modes above;
    any other is RFC 4867's default)."""
    return f"octet-align={int(OCTET_ALIGNED.get(payload_mode, False))}"


def app_sdp(ip: str, port: int, payload_mode: str) -> str:
    """The SDP of an app's AMR at ``ip``:``port``."""
    return build_sdp(ip, port, fmtp=app_fmtp(payload_mode))
