"""Calls: start, status, hang-up, and the app-to-app flow with fallback (CONTRACT §6.1–6.2).

A call lives on the node that created it; its state is the pure ``Call`` in ``model.py``. This
service does the I/O around it: the relay (one ng call per lwork call, tags ``caller`` and
``callee``), the callee's mailbox (the invitation), and the SIP trunk (fallback and phone calls).
One ticker task applies timers; per-call locks keep concurrent requests for a call in order.
Relay statistics are cached per call and refreshed in batches (``stats_refresh.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lwork.accounts.phone import normalise_phone
from lwork.calls.active import Active
from lwork.calls.charging import CallCharging
from lwork.calls.ended import EndedCalls
from lwork.calls.inbound import accept_invite
from lwork.calls.media_handover import follow_app
from lwork.calls.model import (
    Call,
    Ended,
    Event,
    IllegalTransition,
    Status,
    Timing,
)
from lwork.calls.ports import MediaControl, SipLegs
from lwork.calls.quality import party_stats
from lwork.calls.sip_leg import dial
from lwork.calls.stats_refresh import StatsRefresher
from lwork.calls.timers import tick_forever
from lwork.errors import Failed
from lwork.fraud.service import FraudService
from lwork.ids import new_call_session_id
from lwork.media.ng.client import CallStats, NgError
from lwork.media.sdp_min import build_sdp
from lwork.push.service import PushService
from lwork.sip.trunk.inbound import InboundCall

log = logging.getLogger("lwork.calls")


@dataclass(frozen=True)
class CallPolicy:
    timing: Timing
    inbound_timing: Timing
    payload_mode: str
    codec_name: str = "AMR"
    country_code: str = ""
    """The trunk's default country code, to map E.164 numbers back to the apps' numbers."""
    stats_refresh_s: float = 2.0
    """Relay queries per call at most this often, however many status reads arrive."""
    ended_memory_s: float = 120.0
    """How long an ended call still answers ``p2p_poll`` with ``release``."""


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


class CallService:
    def __init__(
        self,
        *,
        node: str,
        media: MediaControl,
        push: PushService,
        trunk: SipLegs,
        reachable: Callable[[str], Any],
        owner: Callable[[str], Any],
        policy: CallPolicy,
        monotonic: Callable[[], float],
        charging: CallCharging,
        fraud: FraudService | None = None,
    ) -> None:
        """``reachable(phone)`` awaits the callee's account uuid if its app can be reached
        (a live session that polls or can be pushed), else None; ``owner(phone)`` the uuid of
        the account a number belongs to, reachable or not."""
        self.node = node
        self.media = media
        self.push = push
        self.trunk = trunk
        self.reachable = reachable
        self.owner = owner
        self.policy = policy
        self.now = monotonic
        self.charging = charging
        self.fraud = fraud
        self.calls: dict[str, Active] = {}
        self.callee_sids: dict[str, str] = {}
        self.ended = EndedCalls(policy.ended_memory_s)
        self._ticker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.refresher = StatsRefresher(media, self.spawn, on_gone=self._relay_lost)

    @property
    def active(self) -> int:
        return len(self.calls)

    # caller side

    async def start(self, request: StartRequest) -> dict[str, Any]:
        callee_uuid = await self.reachable(request.callee_phone) if request.p2p else None
        sid = new_call_session_id(self.node)
        if callee_uuid is None:  # a call to the callee's phone: allowed, and its first minute paid
            if self.fraud is not None:  # before the reservation, which a refusal would leave
                await self.fraud.check_call(request.caller, request.callee_phone)
            await self.charging.check(request.caller, sid)
        sdp = build_sdp(request.client_ip, request.port)
        try:
            offer = await self.media.offer(sid, "caller", sdp)
            relay_ip, caller_port = await self.media.relay_address(sid, "caller")
        except NgError as exc:
            log.warning("relay refused call %s: %s", sid, exc)
            with contextlib.suppress(NgError):
                await self.media.delete(sid)
            await self.charging.release(sid)
            raise Failed("no_media_port") from exc
        now = self.now()
        call = Call(
            sid=sid,
            caller=request.caller,
            callee_phone=request.callee_phone,
            callee_uuid=callee_uuid,
            p2p=callee_uuid is not None,
            created_at=now,
            timing=self.policy.timing,
        )
        active = Active(call, relay_ip=relay_ip, callee_port=offer.media.port, offer_sdp=offer.sdp)
        active.caller_id = request.caller_id
        active.app_media["caller"] = (request.client_ip, request.port)
        active.relay_ip = relay_ip or offer.media.ip
        self.calls[sid] = active
        response = {
            "status": "ok",
            "session_id": sid,
            "ip": active.relay_ip,
            "port": caller_port,
            "codec": 102,
            "codec_name": self.policy.codec_name,
            "payload_mode": self.policy.payload_mode,
            "rssrc": active.rssrc,
        }
        if callee_uuid is not None:
            opdata = {**response, "event": "p2p", "caller": request.caller_display,
                      "callee": request.callee_phone}  # fmt: skip
            invite = {"event": "p2p_inform_called", "caller": request.caller_display,
                      "opdata": opdata}  # fmt: skip
            if await self.push.notify(callee_uuid, invite, call_id=sid) is None:
                call.p2p = False
                call.status = Status.IDLE
        if not call.p2p:
            self.spawn(dial(self, active))
        log.info("call %s from %s to %s (%s)", sid, call.caller, call.callee_phone,
                 "p2p" if call.p2p else "sip")  # fmt: skip
        return response

    async def status(self, sid: str, client_ip: str = "") -> tuple[Status, dict[str, Any]]:
        """The status a leg's owner sees, with its live quality; also that leg's keep-alive,
        and from a new address (``client_ip``) the news that its media moved."""
        found = self._find(sid)
        if found is None:
            return Status.RELEASE, {}
        active, role = found
        if client_ip:
            await follow_app(self.media, active, role, client_ip)
        now = self.now()
        if role == "caller":
            active.call.caller_alive_at = now
            status = active.call.status
        else:
            active.call.callee_alive_at = now
            status = active.call.status if active.inbound else Status.P2P_HOOKOFF
        return status, await self.leg_view(active, role, now)

    async def hangup(self, sid: str) -> None:
        found = self._find(sid)
        if found is not None:
            await self.end(found[0], "hangup_" + found[1])

    def parties(self) -> set[str]:
        """The accounts taking part in this node's live calls (callers and callee apps)."""
        found = {active.call.caller for active in self.calls.values()}
        found.update(a.call.callee_uuid for a in self.calls.values() if a.call.callee_uuid)
        return found

    async def end_calls_of(self, uuid: str, reason: str) -> int:
        """End every live call of an account here (deactivated: ``not_actived``); how many."""
        mine = [
            active
            for active in self.calls.values()
            if uuid in (active.call.caller, active.call.callee_uuid)
        ]
        for active in mine:
            log.info("call %s: account %s %s", active.call.sid, uuid, reason)
            await self.end(active, reason)
        return len(mine)

    async def dtmf(self, sid: str, digits: str) -> None:
        found = self._find(sid)
        if found is None:
            return
        active, _ = found
        leg = active.sip_leg
        if active.call.status is not Status.HOOKOFF or leg is None:
            return  # DTMF only means something to a phone on the SIP leg
        if "telephone-event" in (leg.remote_sdp or ""):
            for digit in digits:
                await self.media.play_dtmf(active.call.sid, "caller", digit)
        else:
            # The trunk offered no RFC 4733 events: SIP INFO carries the digits instead.
            for digit in digits:
                leg.send_info_dtmf(digit)

    # ending

    async def end(self, active: Active, reason: str, event: Event | None = None) -> None:
        call = active.call
        async with active.lock:
            if call.ended:
                return
            self.apply(active, event or Ended(reason))
        self.calls.pop(call.sid, None)
        self.ended.add(call.sid, self.now())
        if call.callee_sid is not None:
            self.callee_sids.pop(call.callee_sid, None)
        log.info("call %s released: %s", call.sid, call.end_reason)
        if active.sip_leg is not None:
            active.sip_leg.hangup()
        if active.inbound is not None:
            active.inbound.hangup()  # BYE once answered, 480 before (a no-op if it ended)
        with contextlib.suppress(NgError):
            if active.answered_wall is None:
                await self.media.forget(call.sid)  # the final statistics are shown to nobody
            elif (final := await self.media.delete(call.sid)) is not None:
                active.set_stats(final, self.now())  # the record keeps the quality at the end
        if call.p2p or active.warned:  # an invitation or a warning may wait in a mailbox
            await self.push.cancel_call(call.sid)
        await self.charging.ended(active)

    # internals

    def _relay_lost(self, active: Active) -> None:
        """The relay no longer knows this call (it restarted, or timed the media out): end it,
        rather than show the apps a call with no audio until they hang up."""
        if self.calls.get(active.call.sid) is active:  # not ended meanwhile
            log.warning("call %s: the relay no longer knows it", active.call.sid)
            self.spawn(self.end(active, "relay_lost"))

    def _find(self, sid: str) -> tuple[Active, str] | None:
        active = self.calls.get(sid)
        if active is not None:
            # The app of an inbound call holds the call's own id, as its callee.
            return active, "callee" if active.inbound else "caller"
        caller_sid = self.callee_sids.get(sid)
        if caller_sid is not None and (active := self.calls.get(caller_sid)) is not None:
            return active, "callee"
        return None

    def apply(self, active: Active, event: Event) -> None:
        try:
            active.call.apply(event, self.now())
        except IllegalTransition as exc:
            log.info("call %s: %s", active.call.sid, exc)
        active.next_check = 0.0  # its timers may have changed: the next tick looks again

    async def leg_view(self, active: Active, role: str, now: float) -> dict[str, Any]:
        """The ``stats`` object of ``role``'s status: from the cached relay view while it is
        fresh enough, else once the refresh it waits for has come (CONTRACT §6.1)."""
        await self.current_stats(active, now)
        view = active.views.get(role)
        if view is None:
            view = active.views[role] = party_stats(active.stats, role)
        return view

    def cached_stats(self, active: Active, now: float) -> CallStats | None:
        """The relay's view for the timers' first-RTP watch, never waiting for the relay; a
        refresh, batched with other calls', is asked for when it is half ``stats_refresh_s``
        old, so that an app reading its status every second never waits either."""
        if now - active.stats_at >= self.policy.stats_refresh_s / 2:
            active.stats_at = now
            active.refreshing = self.refresher.request(active)
        return active.stats

    async def current_stats(self, active: Active, now: float) -> CallStats | None:
        """The relay's view with no figure older than ``stats_refresh_s``: a read after a pause
        waits for the refresh. Should the relay not answer, the wait ends after half
        ``stats_refresh_s``, well within the time another node gives a forwarded read."""
        self.cached_stats(active, now)
        pending = active.refreshing
        if now - active.stats_fresh_at >= self.policy.stats_refresh_s and pending is not None:
            await asyncio.wait([pending], timeout=self.policy.stats_refresh_s / 2)
        return active.stats

    async def fresh_stats(self, active: Active, now: float) -> CallStats | None:
        """The relay's view queried at once, for a timer about to end a call whose owner
        stopped polling: a cached view may predate the packets that keep the leg alive."""
        active.stats_at = now
        await self.refresher.now(active)
        return active.stats

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def on_invite(self, inbound: InboundCall) -> None:
        """A phone calls a number of ours (the trunk's ``on_invite``)."""
        await accept_invite(self, inbound)

    # timers

    async def start_ticker(self) -> None:
        self._ticker = asyncio.create_task(tick_forever(self), name="calls-ticker")

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for active in list(self.calls.values()):
            await self.end(active, "shutdown")
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)


def normalised_callee(callee_phone: str) -> str:
    number = normalise_phone(callee_phone)
    if len(callee_phone) < 3:
        raise Failed("phone_too_short")
    if not number:
        raise Failed("invalid_phone")
    return number
