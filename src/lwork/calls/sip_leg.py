"""The call's SIP leg to the callee's phone: placing it (after a balance check), its progress
as the trunk reports it, the app-to-app fallback that starts it, and the talk-time warning."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lwork.calls.active import Active
from lwork.calls.media_handover import follow_carrier
from lwork.calls.model import (
    Ended,
    Event,
    FallbackStarted,
    Status,
    TalkTimeWarning,
    TrunkAnswered,
    TrunkRinging,
)
from lwork.calls.ports import TrunkUnavailable
from lwork.errors import Failed
from lwork.media.ng.client import NgError

if TYPE_CHECKING:
    from lwork.calls.service import CallService

log = logging.getLogger("lwork.calls")


class CallLegListener:
    """Receives the trunk's callbacks (on the event loop) and hands them to the call service."""

    def __init__(self, service: CallService, active: Active) -> None:
        self._service = service
        self._active = active

    def _progress(self, event: Event, sdp: str | None) -> None:
        self._service.spawn(_progress(self._service, self._active, event, sdp))

    def ringing(self, early_sdp: str | None) -> None:
        self._progress(TrunkRinging(), early_sdp)

    def answered(self, sdp: str) -> None:
        self._progress(TrunkAnswered(), sdp)

    def failed(self, code: int, reason: str) -> None:
        self._progress(Ended(f"sip_{code}"), None)

    def ended(self, reason: str) -> None:
        self._progress(Ended(reason), None)

    def media_moved(self, sdp: str) -> None:
        self._service.spawn(follow_carrier(self._service.media, self._active, sdp))


async def dial(service: CallService, active: Active) -> None:
    """Start the SIP leg to the callee's real phone."""
    call = active.call
    listener = CallLegListener(service, active)
    try:
        if service.fraud is not None and call.callee_uuid is not None:  # not checked at start
            await service.fraud.check_call(call.caller, call.callee_phone)
        await service.charging.check(call.caller, call.sid)  # a fallback holds from here on
    except Failed as exc:
        log.info("call %s: no SIP leg to %s: %s", call.sid, call.callee_phone, exc.reason)
        await service.end(active, exc.reason)
        return
    try:
        active.sip_leg = await service.trunk.dial(
            call.callee_phone, active.caller_id or call.caller, active.offer_sdp, listener
        )
    except TrunkUnavailable as exc:
        log.warning("call %s: no SIP leg to %s: %s", call.sid, call.callee_phone, exc)
        await service.end(active, "trunk_unavailable")


async def _progress(service: CallService, active: Active, event: Event, sdp: str | None) -> None:
    if isinstance(event, Ended):
        await service.end(active, event.reason)
        return
    if sdp:
        try:
            await service.media.answer(active.call.sid, "caller", "callee", sdp)
        except NgError as exc:
            log.warning("call %s: relay refused the trunk's SDP: %s", active.call.sid, exc)
            await service.end(active, "media_failed")
            return
    async with active.lock:
        if isinstance(event, TrunkAnswered) and active.call.status in (
            Status.IDLE,
            Status.RING,
        ):
            await service.charging.answered(active, service.now())
        service.apply(active, event)


async def warn(service: CallService, active: Active, event: TalkTimeWarning) -> None:
    """Tell the caller the balance ends the call soon (CONTRACT §6.1)."""
    async with active.lock:
        service.apply(active, event)
    active.warned = True
    warning = {"event": "talk_time_warning", "session_id": active.call.sid,
               "seconds_left": round(event.seconds_left)}  # fmt: skip
    await service.push.notify(active.call.caller, warning, call_id=active.call.sid)


async def fall_back(service: CallService, active: Active) -> None:
    async with active.lock:
        if active.call.status is not Status.P2P_IDLE:
            return
        service.apply(active, FallbackStarted())
    await service.push.cancel_call(active.call.sid)
    await dial(service, active)
