"""The engine's SIP legs: dialling one (after the fraud check and the balance's reservation),
and what the trunk then reports of it, turned into the bridge's neutral events.

A SIP party's SDP (early media, its answer, a re-INVITE) is told to the relay before the event
reaches the bridge: the relay must be ready for the media the event lets flow. A callback's
``local`` answer gives the relay's SDP that ``remote`` is then dialled with.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lwork.calls.boundary import TrunkUnavailable
from lwork.calls.bridge import LOCAL, REMOTE, LegAnswered, LegEnded, LegRinging, Refused, Shape
from lwork.calls.carrier_sdp import G711, chosen_codec, offer_for_carrier
from lwork.calls.live import LiveCall
from lwork.calls.media_handover import follow_carrier, signal
from lwork.errors import Failed
from lwork.media.ng.client import NgError

if TYPE_CHECKING:
    from lwork.calls.engine import CallEngine

log = logging.getLogger("lwork.calls")


class LegEvents:
    """One SIP leg's callbacks (plain calls on the event loop), handed to the engine."""

    def __init__(self, engine: CallEngine, live: LiveCall, role: str) -> None:
        self._engine = engine
        self._live = live
        self._role = role

    def _feed(self, event: LegRinging | LegAnswered | LegEnded, sdp: str | None = None) -> None:
        self._engine.spawn(progress(self._engine, self._live, event, sdp))

    def ringing(self, early_sdp: str | None) -> None:
        # A callback's phones hear each other only once both answered: no early media there.
        keep_sdp = self._live.shape is not Shape.CALLBACK
        self._feed(LegRinging(self._role), early_sdp if keep_sdp else None)

    def answered(self, sdp: str) -> None:
        self._engine.telemetry.sip_outcomes.inc("200")
        self._feed(LegAnswered(self._role), sdp)

    def failed(self, code: int, reason: str) -> None:
        self._engine.telemetry.sip_outcomes.inc(str(code))
        self._feed(LegEnded(self._role, f"sip_{code}"))

    def ended(self, reason: str) -> None:
        self._feed(LegEnded(self._role, reason))

    def media_moved(self, sdp: str) -> None:
        # A re-INVITE may change the codec (G.711 <-> AMR): the live call knows the newest (the
        # record, opened at the answer, keeps the codec agreed then).
        note_carrier_codec(self._engine, self._live, self._role, sdp)
        self._engine.spawn(follow_carrier(self._engine.media, self._live, self._role, sdp))


async def progress(
    engine: CallEngine, live: LiveCall, event: LegRinging | LegAnswered | LegEnded, sdp: str | None
) -> None:
    if sdp and not live.bridge.ended:
        note_carrier_codec(engine, live, event.role, sdp)
        try:
            result = await signal(engine.media, live, event.role, sdp)
        except NgError as exc:
            log.warning("call %s: relay refused the trunk's SDP: %s", live.sid, exc)
            await engine.end(live, "media_failed")
            return
        if live.shape is Shape.CALLBACK and event.role == LOCAL:
            live.sdp_for[REMOTE] = result.sdp  # local's codec, the relay's address
    try:
        await engine.feed(live, event)
    except Refused as exc:  # a late word about a leg that ended: nothing left to do
        log.debug("call %s: %s ignored: %s", live.sid, event, exc.reason)


def note_carrier_codec(engine: CallEngine, live: LiveCall, role: str, sdp: str) -> None:
    """Keep the codec the carrier chose on ``role`` (the call record shows it) and say so when
    it is G.711 toward an app while nothing transcodes: the app and the phone then cannot hear
    each other (`carrier_sdp`)."""
    codec = chosen_codec(sdp)
    if codec is None or live.carrier_codec.get(role) == codec:
        return
    live.carrier_codec[role] = codec
    if codec in G711 and live.shape is not Shape.CALLBACK and not engine.policy.transcoding:
        log.warning(
            "call %s: the carrier chose %s, which the app does not speak, and the media path "
            "does not transcode: the audio will not be understood (CONTRACT §6.4)",
            live.sid,
            codec,
        )


async def dial(engine: CallEngine, live: LiveCall, role: str) -> None:
    """Place the SIP leg ``role``; what the trunk reports of it comes to ``LegEvents``."""
    number = live.numbers[role]
    try:
        if live.shape is Shape.P2P and engine.fraud is not None:
            # A direct call and a callback's legs were screened when they were asked for.
            await engine.fraud.check_call(live.account, number)
        if role in live.bridge.paid_legs():
            await engine.charging.hold(live)
    except Failed as exc:
        log.info("call %s: no SIP leg to %s: %s", live.sid, number, exc.reason)
        await engine.end(live, exc.reason)
        return
    live.dialled_wall[role] = engine.wall()
    events = LegEvents(engine, live, role)
    sdp = live.sdp_for[role]
    if live.shape is not Shape.CALLBACK:  # an app is on the other side: AMR, or transcoding
        sdp = offer_for_carrier(sdp, transcoding=engine.policy.transcoding)
    try:
        leg = await engine.trunk.dial(number, live.caller_id, sdp, events)
    except TrunkUnavailable as exc:
        log.warning("call %s: no SIP leg to %s: %s", live.sid, number, exc)
        await progress(engine, live, LegEnded(role, "trunk_unavailable"), None)
        return
    if live.bridge.ended:
        leg.hangup()  # ended while the INVITE went out
        return
    live.sip[role] = leg
