"""A party's media moving mid-call, told to the relay: an app on a new network (Wi-Fi -> LTE),
or the carrier's re-INVITE naming a new media address.

The relay takes a leg's media only from the host the signalling gave it (``strict source``,
``media.strict_source``): the app's HTTP address when the call started or was answered. When
the app's status read of its own call comes from another address, the app has moved: the leg
is signalled again (a new offer for the caller, a new answer for the callee) with the new
host and the port the app announced, and the relay lets the leg go to it. The call's session
id (unguessable, CONTRACT §6) is what lets a read speak for the leg; a read from the host the
relay already expects costs nothing.
"""

from __future__ import annotations

import logging

from lwork.calls.active import Active
from lwork.calls.ports import MediaControl
from lwork.media.ng.client import NgError
from lwork.media.sdp_min import build_sdp

log = logging.getLogger("lwork.calls")


async def follow_app(media: MediaControl, active: Active, role: str, client_ip: str) -> None:
    """Point the relay's ``role`` leg ("caller" or "callee") at ``client_ip`` if it moved."""
    known = active.app_media.get(role)
    if known is None or known[0] == client_ip:
        return  # not signalled yet (its answer will give the address), or not moved
    sid = active.call.sid
    sdp = build_sdp(client_ip, known[1])
    async with active.lock:
        if active.app_media.get(role) != known:
            return  # a concurrent read did it
        try:
            if role == "caller":
                await media.offer(sid, "caller", sdp)
            else:
                await media.answer(sid, "sip" if active.inbound else "caller", "callee", sdp)
        except NgError as exc:
            log.warning("call %s: relay refused the %s's new address: %s", sid, role, exc)
            return
        active.app_media[role] = (client_ip, known[1])
    log.info("call %s: the %s's media moved to a new network", sid, role)


async def follow_carrier(media: MediaControl, active: Active, sdp: str) -> None:
    """The carrier's re-INVITE moved its media to ``sdp``'s address: tell the relay, whose
    carrier leg otherwise keeps refusing media from there."""
    if active.call.ended:
        return
    sid = active.call.sid
    try:
        if active.inbound is not None:
            await media.offer(sid, "sip", sdp)  # the carrier offered the call: its tag
        else:
            await media.answer(sid, "caller", "callee", sdp)
    except NgError as exc:
        log.warning("call %s: relay refused the carrier's new SDP: %s", sid, exc)
        return
    log.info("call %s: the carrier moved its media", sid)
