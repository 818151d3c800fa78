"""Telling the relay a party's SDP: when a leg starts or answers, and when its media moves
(an app on a new network, Wi-Fi -> LTE; a carrier's re-INVITE naming a new media address).

Each call is one session in the relay, opened by an ``offer`` from one party's tag (the app
that called, the phone that called us, a callback's ``remote``); the other party's SDP goes in
an ``answer`` to it. A later ``offer`` from the same tag replaces that party's address, as a
re-INVITE does.

The relay takes a leg's media only from the host the signalling gave it (``strict source``,
``media.strict_source``): the app's HTTP address when the call started or was answered. When
the app's status read of its own call comes from another address, the app has moved: the leg
is signalled again with the new host and the port the app announced, and the relay lets the
leg go to it. The call's session id (unguessable, CONTRACT §6) is what lets a read speak for
the leg; a read from the host the relay already expects costs nothing.
"""

from __future__ import annotations

import logging

from lwork.calls.app_sdp import app_sdp
from lwork.calls.boundary import MediaControl
from lwork.calls.bridge import Shape
from lwork.calls.live import LiveCall
from lwork.media.ng.client import NgError, SdpResult

log = logging.getLogger("lwork.calls")

OFFERER = {Shape.P2P: "caller", Shape.OUT: "caller", Shape.IN: "sip", Shape.CALLBACK: "remote"}
"""The relay tag whose ``offer`` opened each shape's session."""


async def signal(media: MediaControl, live: LiveCall, role: str, sdp: str) -> SdpResult:
    """Tell the relay ``role``'s SDP; its answer is the SDP for the other party."""
    tag, offerer = live.tag(role), OFFERER[live.shape]
    if tag == offerer:
        return await media.offer(live.sid, tag, sdp)
    return await media.answer(live.sid, offerer, tag, sdp)


async def follow_app(
    media: MediaControl, live: LiveCall, role: str, client_ip: str, payload_mode: str
) -> None:
    """Point the relay's leg of the app on ``role`` at ``client_ip`` if it moved."""
    known = live.app_media.get(role)
    if known is None or known[0] == client_ip:
        return  # not signalled yet (its answer will give the address), or not moved
    async with live.lock:
        if live.app_media.get(role) != known:
            return  # a concurrent read did it
        try:
            await signal(media, live, role, app_sdp(client_ip, known[1], payload_mode))
        except NgError as exc:
            log.warning("call %s: relay refused the %s's new address: %s", live.sid, role, exc)
            return
        live.app_media[role] = (client_ip, known[1])
    log.info("call %s: the %s's media moved to a new network", live.sid, role)


async def follow_carrier(media: MediaControl, live: LiveCall, role: str, sdp: str) -> None:
    """A phone's re-INVITE moved its media to ``sdp``'s address: tell the relay, whose leg
    otherwise keeps refusing media from there."""
    if live.bridge.ended:
        return
    try:
        await signal(media, live, role, sdp)
    except NgError as exc:
        log.warning("call %s: relay refused the %s's new SDP: %s", live.sid, role, exc)
        return
    log.info("call %s: the %s moved its media", live.sid, role)
