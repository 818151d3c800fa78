"""The calling app's side of a call (CONTRACT §6.1): start, status with live quality, hang-up
and DTMF. A call to an app whose app can be reached is ``p2p``; any other is ``out``."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from lwork.accounts.phone import normalise_phone
from lwork.calls.app_sdp import app_sdp
from lwork.calls.bridge import CALLEE, CALLER, PHONE, Refused, Shape, Status, StatusRead
from lwork.calls.engine import CallEngine
from lwork.calls.live import LiveCall
from lwork.calls.media_handover import follow_app
from lwork.calls.replies import StartCallResponse
from lwork.errors import Failed
from lwork.ids import new_call_session_id
from lwork.media.ng.client import NgError

log = logging.getLogger("lwork.calls")


@dataclass(frozen=True)
class StartRequest:
    caller: str
    """Normalised uuid of the caller (authorised by the API layer)."""
    caller_display: str
    callee_phone: str
    client_ip: str
    port: int
    p2p: bool
    caller_id: str
    """What the phone network shows the callee: the account's DID, or its uuid."""


async def start(engine: CallEngine, request: StartRequest) -> StartCallResponse:
    callee_uuid = await engine.reachable(request.callee_phone) if request.p2p else None
    sid = new_call_session_id(engine.node)
    shape = Shape.OUT if callee_uuid is None else Shape.P2P
    numbers = {CALLER: request.caller, PHONE: request.callee_phone}
    if shape is Shape.P2P:
        numbers[CALLEE] = request.callee_phone
    live = LiveCall(
        sid, engine.new_bridge(shape), request.caller, numbers,
        caller_id=request.caller_id or request.caller, callee_uuid=callee_uuid,
    )  # fmt: skip
    if shape is Shape.OUT:  # before the relay, which a refusal would leave holding ports
        if engine.fraud is not None:
            await engine.fraud.check_call(request.caller, request.callee_phone)
        await engine.charging.hold(live)
    try:
        sdp = app_sdp(request.client_ip, request.port, engine.policy.payload_mode)
        offer = await engine.media.offer(sid, "caller", sdp)
        relay_ip, caller_port = await engine.media.relay_address(sid, "caller")
    except NgError as exc:
        log.warning("relay refused call %s: %s", sid, exc)
        with contextlib.suppress(NgError):
            await engine.media.delete(sid)
        await engine.charging.release(sid)
        raise Failed("no_media_port") from exc
    live.relay_ip = relay_ip or offer.media.ip
    live.callee_port = offer.media.port
    live.sdp_for[PHONE] = offer.sdp
    live.app_media[CALLER] = (request.client_ip, request.port)
    response = StartCallResponse(
        session_id=sid,
        ip=live.relay_ip,
        port=caller_port,
        codec=102,
        codec_name=engine.policy.codec_name,
        payload_mode=engine.policy.payload_mode,
        rssrc=live.rssrc,
    )
    if shape is Shape.P2P:
        opdata = {**msgspec.to_builtins(response), "event": "p2p", "caller": request.caller_display,
                  "callee": request.callee_phone}  # fmt: skip
        live.invitation = {"event": "p2p_inform_called", "caller": request.caller_display,
                           "opdata": opdata}  # fmt: skip
    await engine.launch(live)
    log.info("call %s from %s to %s (%s)", sid, request.caller, request.callee_phone, shape)
    return response


def find(engine: CallEngine, sid: str) -> tuple[LiveCall, str] | None:
    """The app call ``sid`` names and the role of the app that holds that id."""
    live = engine.calls.get(sid)
    if live is not None and live.shape is not Shape.CALLBACK:
        # The app a phone calls holds the call's own id.
        return live, CALLEE if live.shape is Shape.IN else CALLER
    caller_sid = engine.callee_sids.get(sid)
    if caller_sid is not None and (live := engine.calls.get(caller_sid)) is not None:
        return live, CALLEE
    return None


async def status(
    engine: CallEngine, sid: str, client_ip: str = ""
) -> tuple[Status, dict[str, Any]]:
    """The status a leg's owner sees, with its live quality; also that leg's keep-alive,
    and from a new address (``client_ip``) the news that its media moved."""
    found = find(engine, sid)
    if found is None:
        return Status.RELEASE, {}
    live, role = found
    known = live.app_media.get(role)
    if client_ip and known is not None and known[0] != client_ip:  # checked here: it rarely is
        await follow_app(engine.media, live, role, client_ip, engine.policy.payload_mode)
    now = engine.now()
    # A read only ever pushes the call's deadlines later: no need to wake the ticker for it.
    # (try/except, not contextlib.suppress: this runs on every status poll.)
    try:
        live.bridge.handle(StatusRead(role), now)
    except Refused:
        pass  # ended meanwhile: the read shows it
    bridge_status = live.bridge.status()
    if role == CALLEE and live.shape is Shape.P2P and bridge_status is not Status.RELEASE:
        bridge_status = Status.P2P_HOOKOFF  # the answering app's own view of its call
    return bridge_status, await engine.leg_view(live, live.tag(role), now)


async def hangup(engine: CallEngine, sid: str) -> None:
    found = find(engine, sid)
    if found is not None:
        await engine.end(found[0], "hangup_" + found[1])


async def dtmf(engine: CallEngine, sid: str, digits: str) -> None:
    found = find(engine, sid)
    leg = found[0].sip.get(PHONE) if found is not None else None
    if found is None or leg is None or found[0].bridge.status() is not Status.HOOKOFF:
        return  # DTMF only means something to a phone on the SIP leg
    if "telephone-event" in (leg.remote_sdp or ""):
        for digit in digits:
            await engine.media.play_dtmf(sid, "caller", digit)
    else:
        # The trunk offered no RFC 4733 events: SIP INFO carries the digits instead.
        for digit in digits:
            leg.send_info_dtmf(digit)


def normalised_callee(callee_phone: str) -> str:
    number = normalise_phone(callee_phone)
    if len(callee_phone) < 3:
        raise Failed("phone_too_short")
    if not number:
        raise Failed("invalid_phone")
    return number
