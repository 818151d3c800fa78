"""Calls: start, status, hang-up, and the app-to-app flow with fallback (CONTRACT §6.1–6.2).

A call lives on the node that created it; its state is the pure ``Call`` in ``model.py``. This
service does the I/O around it: the relay (one ng call per lwork call, tags ``caller`` and
``callee``), the callee's mailbox (the invitation), and the SIP trunk (fallback and phone calls).
One ticker task applies timers; per-call locks keep concurrent requests for a call in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lwork.accounts.phone import normalise_phone
from lwork.calls.model import (
    SIP_STATUSES,
    Call,
    CalleeAnswered,
    CalleeRejected,
    CalleeRinging,
    Ended,
    Event,
    FallbackStarted,
    IllegalTransition,
    Status,
    Timing,
)
from lwork.calls.ports import MediaControl, SipLeg, SipLegs, TrunkUnavailable
from lwork.calls.quality import leg_stats
from lwork.calls.sip_leg import CallLegListener
from lwork.errors import Failed
from lwork.ids import new_call_session_id
from lwork.media.ng import CallStats, NgError
from lwork.media.sdp_min import build_sdp
from lwork.push.service import PushService

log = logging.getLogger("lwork.calls")

_STATS_MAX_AGE_S = 1.0
_TICK_S = 0.25


@dataclass(frozen=True)
class CallPolicy:
    timing: Timing
    payload_mode: str
    codec_name: str = "AMR"


@dataclass
class Active:
    """A call and what the service keeps beside it."""

    call: Call
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    relay_ip: str = ""
    callee_port: int = 0
    offer_sdp: str = ""
    rssrc: str = field(default_factory=lambda: str(secrets.randbits(32)))
    stats: CallStats | None = None
    stats_at: float = -1e9
    packets_seen: dict[str, int] = field(default_factory=dict)
    sip_leg: SipLeg | None = None


@dataclass(frozen=True)
class StartRequest:
    caller: str
    """Normalised uuid of the caller (authorised by the API layer)."""
    caller_display: str
    callee_phone: str
    client_ip: str
    port: int
    p2p: bool


class CallService:
    def __init__(
        self,
        *,
        node: str,
        media: MediaControl,
        push: PushService,
        trunk: SipLegs,
        reachable: Callable[[str], Any],
        policy: CallPolicy,
        monotonic: Callable[[], float],
    ) -> None:
        """``reachable(phone)`` awaits the callee's account uuid if its app can be reached
        (a live session that polls or can be pushed), else None."""
        self._node = node
        self._media = media
        self._push = push
        self._trunk = trunk
        self._reachable = reachable
        self._policy = policy
        self._now = monotonic
        self._calls: dict[str, Active] = {}
        self._callee_sids: dict[str, str] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        return len(self._calls)

    # caller side

    async def start(self, request: StartRequest) -> dict[str, Any]:
        sid = new_call_session_id(self._node)
        sdp = build_sdp(request.client_ip, request.port)
        try:
            offer = await self._media.offer(sid, "caller", sdp)
            relay_ip, caller_port = await self._media.relay_address(sid, "caller")
        except NgError as exc:
            log.warning("relay refused call %s: %s", sid, exc)
            with contextlib.suppress(NgError):
                await self._media.delete(sid)
            raise Failed("no_media_port") from exc
        callee_uuid = await self._reachable(request.callee_phone) if request.p2p else None
        now = self._now()
        call = Call(
            sid=sid,
            caller=request.caller,
            callee_phone=request.callee_phone,
            callee_uuid=callee_uuid,
            p2p=callee_uuid is not None,
            created_at=now,
            timing=self._policy.timing,
        )
        active = Active(call, relay_ip=relay_ip, callee_port=offer.media.port, offer_sdp=offer.sdp)
        active.relay_ip = relay_ip or offer.media.ip
        self._calls[sid] = active
        response = {
            "status": "ok",
            "session_id": sid,
            "ip": active.relay_ip,
            "port": caller_port,
            "codec": 102,
            "codec_name": self._policy.codec_name,
            "payload_mode": self._policy.payload_mode,
            "rssrc": active.rssrc,
        }
        if callee_uuid is not None:
            opdata = {**response, "event": "p2p", "caller": request.caller_display,
                      "callee": request.callee_phone}  # fmt: skip
            invite = {"event": "p2p_inform_called", "caller": request.caller_display,
                      "opdata": opdata}  # fmt: skip
            if await self._push.notify(callee_uuid, invite, call_id=sid) is None:
                call.p2p = False
                call.status = Status.IDLE
        if not call.p2p:
            self._spawn(self._dial(active))
        log.info("call %s from %s to %s (%s)", sid, call.caller, call.callee_phone,
                 "p2p" if call.p2p else "sip")  # fmt: skip
        return response

    async def status(self, sid: str) -> tuple[Status, dict[str, Any]]:
        """The status a leg's owner sees, with its live quality; also that leg's keep-alive."""
        found = self._find(sid)
        if found is None:
            return Status.RELEASE, {}
        active, role = found
        now = self._now()
        if role == "caller":
            active.call.caller_alive_at = now
            status = active.call.status
        else:
            active.call.callee_alive_at = now
            status = Status.P2P_HOOKOFF
        stats = await self._stats(active, now)
        return status, leg_stats(stats.legs.get(role) if stats else None)

    async def hangup(self, sid: str) -> None:
        found = self._find(sid)
        if found is not None:
            await self.end(found[0], "hangup_" + found[1])

    async def dtmf(self, sid: str, digits: str) -> None:
        found = self._find(sid)
        if found is None:
            return
        active, _ = found
        if active.call.status is Status.HOOKOFF:
            for digit in digits:
                await self._media.play_dtmf(active.call.sid, "caller", digit)

    # callee side (p2p)

    def _invited(self, sid: str) -> Active:
        active = self._calls.get(sid)
        if active is None or active.call.ended:
            raise Failed("session_not_exist")
        if active.call.fell_back or active.call.status in SIP_STATUSES:
            raise Failed("already_call_real_phone")
        return active

    async def ringing(self, sid: str) -> None:
        active = self._invited(sid)
        async with active.lock:
            if active.call.status is Status.P2P_IDLE:
                self._apply(active, CalleeRinging())

    async def answer(self, sid: str, client_ip: str, port: int) -> dict[str, Any]:
        active = self._invited(sid)
        async with active.lock:
            active = self._invited(sid)
            if active.call.status is Status.P2P_HOOKOFF:
                raise Failed("session_not_exist")
            sdp = build_sdp(client_ip, port)
            try:
                await self._media.answer(sid, "caller", "callee", sdp)
            except NgError as exc:
                raise Failed("no_media_port") from exc
            callee_sid = new_call_session_id(self._node)
            active.call.callee_sid = callee_sid
            self._callee_sids[callee_sid] = sid
            self._apply(active, CalleeAnswered())
        await self._push.cancel_call(sid)
        return {
            "status": "ok",
            "session_id": callee_sid,
            "ip": active.relay_ip,
            "port": active.callee_port,
            "codec_name": self._policy.codec_name,
            "payload_mode": self._policy.payload_mode,
            "rssrc": active.rssrc,
        }

    async def reject(self, sid: str) -> None:
        active = self._invited(sid)
        await self.end(active, "rejected", CalleeRejected())

    async def peer_status(self, sid: str) -> tuple[Status, dict[str, Any]]:
        active = self._calls.get(sid)
        if active is None:
            raise Failed("session_not_exist")
        stats = await self._stats(active, self._now())
        return active.call.status, leg_stats(stats.legs.get("caller") if stats else None)

    # ending

    async def end(self, active: Active, reason: str, event: Event | None = None) -> None:
        call = active.call
        async with active.lock:
            if call.ended:
                return
            self._apply(active, event or Ended(reason))
        self._calls.pop(call.sid, None)
        if call.callee_sid is not None:
            self._callee_sids.pop(call.callee_sid, None)
        log.info("call %s released: %s", call.sid, call.end_reason)
        if active.sip_leg is not None:
            with contextlib.suppress(Exception):
                await active.sip_leg.hangup()
        with contextlib.suppress(NgError):
            await self._media.delete(call.sid)
        await self._push.cancel_call(call.sid)

    # internals

    def _find(self, sid: str) -> tuple[Active, str] | None:
        active = self._calls.get(sid)
        if active is not None:
            return active, "caller"
        caller_sid = self._callee_sids.get(sid)
        if caller_sid is not None and (active := self._calls.get(caller_sid)) is not None:
            return active, "callee"
        return None

    def _apply(self, active: Active, event: Event) -> None:
        try:
            active.call.apply(event, self._now())
        except IllegalTransition as exc:
            log.info("call %s: %s", active.call.sid, exc)

    async def _stats(self, active: Active, now: float) -> CallStats | None:
        """The relay's view, refreshed at most once a second per call whoever asks."""
        if now - active.stats_at >= _STATS_MAX_AGE_S:
            active.stats_at = now
            try:
                active.stats = await self._media.query(active.call.sid)
            except NgError as exc:
                log.debug("query %s: %s", active.call.sid, exc)
        return active.stats

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _dial(self, active: Active) -> None:
        """Start the SIP leg to the callee's real phone."""
        call = active.call
        listener = CallLegListener(self, active)
        try:
            active.sip_leg = await self._trunk.dial(
                call.callee_phone, call.caller, active.offer_sdp, listener
            )
        except TrunkUnavailable as exc:
            log.warning("call %s: no SIP leg to %s: %s", call.sid, call.callee_phone, exc)
            await self.end(active, "trunk_unavailable")

    def trunk_event(self, active: Active, event: Event, sdp: str | None) -> None:
        """Progress of the call's SIP leg (called from the trunk's callbacks)."""
        self._spawn(self._trunk_event(active, event, sdp))

    async def _trunk_event(self, active: Active, event: Event, sdp: str | None) -> None:
        if isinstance(event, Ended):
            await self.end(active, event.reason)
            return
        if sdp:
            try:
                await self._media.answer(active.call.sid, "caller", "callee", sdp)
            except NgError as exc:
                log.warning("call %s: relay refused the trunk's SDP: %s", active.call.sid, exc)
                await self.end(active, "media_failed")
                return
        async with active.lock:
            self._apply(active, event)

    async def _fallback(self, active: Active) -> None:
        async with active.lock:
            if active.call.status is not Status.P2P_IDLE:
                return
            self._apply(active, FallbackStarted())
        await self._push.cancel_call(active.call.sid)
        await self._dial(active)

    # timers

    async def start_ticker(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever(), name="calls-ticker")

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for active in list(self._calls.values()):
            await self.end(active, "shutdown")
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            for active in list(self._calls.values()):
                try:
                    await self._tick(active, self._now())
                except Exception:  # one broken call must not stop the timers of the others
                    log.exception("timer of call %s", active.call.sid)

    async def _tick(self, active: Active, now: float) -> None:
        call = active.call
        if call.status is Status.P2P_IDLE and call.first_rtp_at is None:
            stats = await self._stats(active, now)
            caller = stats.legs.get("caller") if stats else None
            if caller is not None and caller.rtp is not None and caller.rtp.packets > 0:
                call.first_rtp_at = now
        for event in call.due_events(now):
            if isinstance(event, FallbackStarted):
                self._spawn(self._fallback(active))
            elif isinstance(event, Ended):
                await self.end(active, event.reason)
        for role in call.silent_legs(now):
            await self._keepalive_by_media(active, role, now)

    async def _keepalive_by_media(self, active: Active, role: str, now: float) -> None:
        """A leg that stopped polling stays up while its owner still sends RTP."""
        stats = await self._stats(active, now)
        leg = stats.legs.get(role) if stats else None
        packets = leg.rtp.packets if leg is not None and leg.rtp is not None else 0
        if packets > active.packets_seen.get(role, 0):
            active.packets_seen[role] = packets
            if role == "caller":
                active.call.caller_alive_at = now
            else:
                active.call.callee_alive_at = now
            return
        await self.end(active, f"keepalive_timeout_{role}")


def normalised_callee(callee_phone: str) -> str:
    number = normalise_phone(callee_phone)
    if len(callee_phone) < 3:
        raise Failed("phone_too_short")
    if not number:
        raise Failed("invalid_phone")
    return number
