"""The invited app's side of a call (CONTRACT §6.2): ringing, answer, reject and ``p2p_poll``,
each by the call's session id from the pushed ``opdata``. The same endpoints drive a phone's
call to an app (``sip_call_in``, ``inbound.py``)."""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

import msgspec

from lwork.calls.app_sdp import app_fmtp, app_sdp
from lwork.calls.bridge import (
    CALLEE,
    CALLER,
    PHONE,
    Event,
    LegAnswered,
    LegEnded,
    LegRinging,
    LegState,
    Refused,
    Shape,
    Status,
    StatusRead,
)
from lwork.calls.carrier_sdp import answer_for_carrier, codecs_we_take
from lwork.calls.engine import CallEngine
from lwork.calls.live import LiveCall
from lwork.calls.media_handover import signal
from lwork.calls.replies import AnswerResponse
from lwork.calls.sip_legs import note_carrier_codec
from lwork.errors import Failed
from lwork.ids import new_call_session_id
from lwork.media.ng.client import NgError

INVITED = (Shape.P2P, Shape.IN)


def invited(engine: CallEngine, sid: str) -> LiveCall:
    live = engine.calls.get(sid)
    if live is None or live.bridge.ended or live.shape not in INVITED:
        raise Failed("session_not_exist")
    if live.bridge.fell_back:
        raise Failed("already_call_real_phone")
    return live


async def tell(engine: CallEngine, live: LiveCall, event: Event) -> None:
    """Hand the app's word to the bridge; what it refuses, the app is told."""
    try:
        await engine.feed(live, event)
    except Refused as exc:
        raise Failed(exc.reason) from None


async def ringing(engine: CallEngine, sid: str) -> None:
    await tell(engine, invited(engine, sid), LegRinging(CALLEE))


async def answer(engine: CallEngine, sid: str, client_ip: str, port: int) -> AnswerResponse:
    live = invited(engine, sid)
    if live.answering or live.bridge.legs[CALLEE].state is LegState.HOOKOFF:
        raise Failed("session_not_exist")  # answered once, by this app or a copy of it
    live.answering = True
    try:
        sdp = app_sdp(client_ip, port, engine.policy.payload_mode)
        result = await signal(engine.media, live, CALLEE, sdp)
    except NgError as exc:
        live.answering = False
        raise Failed("no_media_port") from exc
    live.app_media[CALLEE] = (client_ip, port)
    if live.inbound is not None:  # the relay's SDP goes to the carrier in the 200
        offer = live.inbound.remote_sdp
        try:
            live.sdp_for[PHONE] = answer_for_carrier(
                offer, result.media.ip, result.media.port, secrets.randbits(31),
                transcoding=engine.policy.transcoding,
            )  # fmt: skip
            agreed = live.sdp_for[PHONE]
            live.inbound.codecs_sdp = codecs_we_take(
                agreed, app_fmtp(engine.policy.payload_mode),
                transcoding=engine.policy.transcoding,
            )  # fmt: skip
        except ValueError:
            live.sdp_for[PHONE] = result.sdp  # no AMR offered: the relay's rewrite is the best
            agreed = offer  # what the carrier will send is its own first choice
        note_carrier_codec(engine, live, PHONE, agreed)
        await tell(engine, live, LegAnswered(CALLEE))
        return msgspec.convert({"status": "ok", **live.invitation["opdata"]}, AnswerResponse)
    callee_sid = new_call_session_id(engine.node)
    live.callee_sid = callee_sid
    engine.callee_sids[callee_sid] = sid
    await tell(engine, live, LegAnswered(CALLEE))
    return AnswerResponse(
        status="ok",
        session_id=callee_sid,
        ip=live.relay_ip,
        port=live.callee_port,
        codec_name=engine.policy.codec_name,
        payload_mode=engine.policy.payload_mode,
        rssrc=live.rssrc,
    )


async def reject(engine: CallEngine, sid: str) -> None:
    await tell(engine, invited(engine, sid), LegEnded(CALLEE, "rejected"))


async def peer_status(engine: CallEngine, sid: str) -> tuple[Status, dict[str, Any]]:
    live = engine.calls.get(sid)
    if live is None or live.shape not in INVITED:
        if engine.ended.ended_recently(sid, engine.now()):
            return Status.RELEASE, {}  # the caller hung up: the callee's app learns it here
        raise Failed("session_not_exist")
    peer = PHONE if live.shape is Shape.IN else CALLER
    now = engine.now()
    if CALLEE in live.bridge.legs:
        # The invited app reads its call here: that is its leg's keep-alive as much as a read
        # of its own id (the original's apps that only poll here lost the call, §12 row 22).
        with contextlib.suppress(Refused):
            live.bridge.handle(StatusRead(CALLEE), now)
    return live.bridge.status(), await engine.leg_view(live, live.tag(peer), now)
