"""The callee app's side of an app-to-app call (CONTRACT §6.2): ringing, answer, reject and
``p2p_poll``, each by the call's session id from the pushed ``opdata``. The same endpoints drive
a phone's call to an app (``sip_call_in``), whose SIP side is in ``inbound.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lwork.calls.active import Active
from lwork.calls.inbound import answer_inbound
from lwork.calls.model import SIP_STATUSES, CalleeAnswered, CalleeRejected, CalleeRinging, Status
from lwork.errors import Failed
from lwork.ids import new_call_session_id
from lwork.media.ng.client import NgError
from lwork.media.sdp_min import build_sdp

if TYPE_CHECKING:
    from lwork.calls.service import CallService


def invited(service: CallService, sid: str) -> Active:
    active = service.calls.get(sid)
    if active is None or active.call.ended:
        raise Failed("session_not_exist")
    if active.call.fell_back or active.call.status in SIP_STATUSES:
        raise Failed("already_call_real_phone")
    return active


async def ringing(service: CallService, sid: str) -> None:
    active = invited(service, sid)
    async with active.lock:
        if active.call.status is Status.P2P_IDLE:
            if active.inbound is not None:
                active.inbound.ring()
            service.apply(active, CalleeRinging())


async def answer(service: CallService, sid: str, client_ip: str, port: int) -> dict[str, Any]:
    active = invited(service, sid)
    async with active.lock:
        active = invited(service, sid)
        if active.call.status is Status.P2P_HOOKOFF:
            raise Failed("session_not_exist")
        sdp = build_sdp(client_ip, port)
        if active.inbound is not None:
            reply = await answer_inbound(service, active, active.inbound, sdp)
            active.app_media["callee"] = (client_ip, port)
            return reply
        try:
            await service.media.answer(sid, "caller", "callee", sdp)
        except NgError as exc:
            raise Failed("no_media_port") from exc
        active.app_media["callee"] = (client_ip, port)
        callee_sid = new_call_session_id(service.node)
        active.call.callee_sid = callee_sid
        service.callee_sids[callee_sid] = sid
        service.apply(active, CalleeAnswered())
        await service.charging.answered(active, service.now())  # opens the p2p call's record
    await service.push.cancel_call(sid)
    return {
        "status": "ok",
        "session_id": callee_sid,
        "ip": active.relay_ip,
        "port": active.callee_port,
        "codec_name": service.policy.codec_name,
        "payload_mode": service.policy.payload_mode,
        "rssrc": active.rssrc,
    }


async def reject(service: CallService, sid: str) -> None:
    active = invited(service, sid)
    if active.inbound is not None:
        active.inbound.reject(486)
    await service.end(active, "rejected", CalleeRejected())


async def peer_status(service: CallService, sid: str) -> tuple[Status, dict[str, Any]]:
    active = service.calls.get(sid)
    if active is None:
        if service.ended.ended_recently(sid, service.now()):
            return Status.RELEASE, {}  # the caller hung up: the callee's app learns it here
        raise Failed("session_not_exist")
    peer = "sip" if active.inbound is not None else "caller"  # the relay's tag of the caller
    return active.call.status, await service.leg_view(active, peer, service.now())
