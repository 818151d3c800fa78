"""Callback calls (CONTRACT §6.3): the server rings the user's own phone, then the destination,
and bridges both in one relay session.

Theory of operation. A callback is one ng call in the relay with two tags: ``remote`` (the ng
"caller") and ``local`` (the ng "callee"). rtpengine semantics: the SDP an ``offer`` returns is
for the *other* party, and so is an ``answer``'s. So

1. ``offer(sid, "remote", placeholder)`` returns the SDP we INVITE ``local`` with;
2. local's 200 SDP goes in ``answer(sid, "remote", "local", sdp)``, which returns the SDP we
   INVITE ``remote`` with (local's chosen codec, the relay's address);
3. remote's 200 SDP goes in a repeated ``offer(sid, "remote", sdp)``: a new offer from a known
   from-tag replaces that party's address (a re-INVITE for lwork's relay and rtpengine alike),
   so the relay sends local's voice to remote at once, and takes remote's media from that
   address only (strict source: until then, remote's leg accepts no media at all).

Either leg failing or ending ends the other (CANCEL before an answer, BYE after). Ringing
without answer ends by the trunk's ring timeout; every callback by ``max_s`` at the latest, or
earlier when the owner's balance pays both legs for less (both legs are charged, each from its
own answer, as two CDRs). Nobody needs to keep a callback alive: the user may not even have the
app open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from lwork.calls.callback_state import LOCAL, REMOTE, Callback, LegStatus
from lwork.calls.charging import CallCharging
from lwork.calls.model import CAP_MARGIN_S
from lwork.calls.ports import MediaControl, SipLeg, SipLegs, TrunkUnavailable
from lwork.calls.records import CallRecord, sip_status
from lwork.errors import Failed
from lwork.fraud.service import FraudService
from lwork.ids import new_call_session_id
from lwork.media.ng.client import NgError
from lwork.sip.offer_answer import PayloadFormat, build_offer
from lwork.sip.sdp import Origin

log = logging.getLogger("lwork.calls.callback")

# Both parties are phones and the relay forwards packets as they are: local may pick any codec
# a carrier speaks, and remote is then offered exactly local's choice.
PLACEHOLDER_FORMATS = (
    PayloadFormat(8, "PCMA"),
    PayloadFormat(0, "PCMU"),
    PayloadFormat(102, "AMR", 8000, "octet-align=0"),
    PayloadFormat(101, "telephone-event", 8000, "0-15"),
)


def placeholder_offer() -> str:
    """Remote's stand-in SDP before it is called: discard port, no address yet."""
    offer = build_offer(
        PLACEHOLDER_FORMATS, address="0.0.0.0", port=9, origin=Origin("lwork", "1", "1", "0.0.0.0")
    )
    return bytes(offer).decode()


@dataclass
class Running:
    """A callback in progress and the I/O handles beside its state."""

    state: Callback
    sip_legs: dict[str, SipLeg] = field(default_factory=dict)
    deadline: asyncio.TimerHandle | None = None
    answered_wall: dict[str, float] = field(default_factory=dict)
    """When each leg answered (wall clock): where its CDR's meter starts."""
    dialled_wall: dict[str, float] = field(default_factory=dict)
    """When each leg was dialled (wall clock): its record's start."""


class LegEvents:
    """One SIP leg's callbacks (plain calls on the event loop), handed to the service."""

    def __init__(self, service: CallbackService, running: Running, role: str) -> None:
        self._service = service
        self._running = running
        self._role = role

    def ringing(self, early_sdp: str | None) -> None:
        self._running.state.ringing(self._role)

    def answered(self, sdp: str) -> None:
        self._service.leg_answered(self._running, self._role, sdp)

    def failed(self, code: int, reason: str) -> None:
        self._service.leg_gone(self._running, f"{self._role}_sip_{code}")

    def ended(self, reason: str) -> None:
        self._service.leg_gone(self._running, f"{self._role}_{reason}")

    def media_moved(self, sdp: str) -> None:
        self._service.leg_moved(self._running, self._role, sdp)


class CallbackService:
    """Starts, watches and ends callbacks; one per user at a time."""

    def __init__(
        self,
        *,
        node: str,
        media: MediaControl,
        trunk: SipLegs,
        max_s: float,
        charging: CallCharging | None = None,
        wall: Callable[[], float] = time.time,
        fraud: FraudService | None = None,
    ) -> None:
        """``charging`` None: callbacks are free and unrecorded (tests of the SIP flow alone)."""
        self.charging = charging
        self.fraud = fraud
        self.wall = wall
        self.node = node
        self.media = media
        self.trunk = trunk
        self.max_s = max_s
        self.callbacks: dict[str, Running] = {}
        self._by_owner: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        return len(self.callbacks)

    async def start(self, owner: str, local: str, remote: str, caller_id: str) -> str:
        """Ring ``local`` now, ``remote`` once local answers; the callback's session id."""
        if owner in self._by_owner:
            raise Failed("session_already_exist")
        if self.fraud is not None:  # both legs' destinations, the daily cap, velocity
            await self.fraud.check_callback(owner, local, remote)
        sid = new_call_session_id(self.node)
        billing = self.charging.billing if self.charging is not None else None
        if billing is not None:  # one reservation for both legs: a callback is one paid call
            await billing.hold(owner, sid, "callback", 2, self.charging_owner)
            if owner in self._by_owner:  # started meanwhile
                await billing.release(sid)
                raise Failed("session_already_exist")
        self._by_owner[owner] = sid  # claimed before the first await: concurrent starts lose
        try:
            offer = await self.media.offer(sid, REMOTE, placeholder_offer())
        except NgError as exc:
            log.warning("relay refused callback %s: %s", sid, exc)
            del self._by_owner[owner]
            with contextlib.suppress(NgError):
                await self.media.delete(sid)
            if billing is not None:
                await billing.release(sid)
            raise Failed("no_media_port") from exc
        running = Running(Callback(sid, owner, local, remote, caller_id))
        self.callbacks[sid] = running
        loop = asyncio.get_running_loop()
        running.deadline = loop.call_later(self.max_s, self._expire, running)
        log.info("callback %s for %s: %s then %s", sid, owner, local, remote)
        await self._dial(running, LOCAL, offer.sdp)
        return sid

    def status(self, sid: str) -> tuple[LegStatus, LegStatus]:
        """(local, remote); an unknown or finished callback is released on both sides."""
        running = self.callbacks.get(sid)
        if running is None:
            return LegStatus.RELEASE, LegStatus.RELEASE
        legs = running.state.legs
        return legs[LOCAL], legs[REMOTE]

    def parties(self) -> set[str]:
        """The accounts whose callbacks run here."""
        return set(self._by_owner)

    async def end_calls_of(self, uuid: str, reason: str) -> int:
        """End the account's callback here (deactivated: ``not_actived``); how many ended."""
        running = self.callbacks.get(self._by_owner.get(uuid, ""))
        if running is None:
            return 0
        await self.end(running, reason)
        return 1

    async def hangup(self, sid: str) -> None:
        running = self.callbacks.get(sid)
        if running is not None:
            await self.end(running, "hangup")

    async def end(self, running: Running, reason: str) -> None:
        state = running.state
        if not state.end(reason):
            return
        self.callbacks.pop(state.sid, None)
        if self._by_owner.get(state.owner) == state.sid:
            del self._by_owner[state.owner]
        if running.deadline is not None:
            running.deadline.cancel()
        for leg in running.sip_legs.values():
            leg.hangup()  # CANCEL or BYE; a no-op for the leg that ended by itself
        with contextlib.suppress(NgError):
            await self.media.delete(state.sid)
        log.info("callback %s released: %s", state.sid, state.end_reason)
        await self._settle(running)

    async def close(self) -> None:
        for running in list(self.callbacks.values()):
            await self.end(running, "shutdown")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # SIP leg events

    @property
    def charging_owner(self) -> str:
        return self.charging.owner if self.charging is not None else self.node

    def leg_answered(self, running: Running, role: str, sdp: str) -> None:
        if role == LOCAL:
            if running.state.answered(LOCAL):
                running.answered_wall[LOCAL] = self.wall()
                self._spawn(self._open_record(running, LOCAL))
                self._spawn(self._call_remote(running, sdp))
        else:
            self._spawn(self._remote_answered(running, sdp))

    def leg_gone(self, running: Running, reason: str) -> None:
        self._spawn(self.end(running, reason))

    def leg_moved(self, running: Running, role: str, sdp: str) -> None:
        self._spawn(self._leg_moved(running, role, sdp))

    async def _leg_moved(self, running: Running, role: str, sdp: str) -> None:
        """A party's re-INVITE moved its media: the relay takes it only from where it is told."""
        if running.state.ended:
            return
        sid = running.state.sid
        try:
            if role == REMOTE:
                await self.media.offer(sid, REMOTE, sdp)
            else:
                await self.media.answer(sid, REMOTE, LOCAL, sdp)
        except NgError as exc:
            log.warning("callback %s: relay refused %s's new SDP: %s", sid, role, exc)

    async def _call_remote(self, running: Running, local_sdp: str) -> None:
        try:
            for_remote = await self.media.answer(running.state.sid, REMOTE, LOCAL, local_sdp)
        except NgError as exc:
            log.warning("callback %s: relay refused local's SDP: %s", running.state.sid, exc)
            await self.end(running, "media_failed")
            return
        if not running.state.ended:
            await self._dial(running, REMOTE, for_remote.sdp)

    async def _remote_answered(self, running: Running, remote_sdp: str) -> None:
        if running.state.ended:
            return  # a late 200: the trunk leg was hung up already
        try:
            await self.media.offer(running.state.sid, REMOTE, remote_sdp)
        except NgError as exc:
            # Not fatal to the signalling; under strict source remote's media is refused.
            log.warning("callback %s: relay refused remote's SDP: %s", running.state.sid, exc)
        if running.state.answered(REMOTE):
            running.answered_wall[REMOTE] = self.wall()
            await self._open_record(running, REMOTE)
            await self._cap(running)

    async def _cap(self, running: Running) -> None:
        """Hang up when the balance has paid both legs as long as it can."""
        billing = self.charging.billing if self.charging is not None else None
        if billing is None or running.deadline is None:
            return
        state = running.state
        cap = await billing.cap_s(state.owner, state.sid, "callback", 2, self.charging_owner)
        loop = asyncio.get_running_loop()
        if cap is None:
            return
        cap = max(0.0, cap - CAP_MARGIN_S)
        if loop.time() + cap < running.deadline.when():
            running.deadline.cancel()
            running.deadline = loop.call_later(cap, self._expire, running, "balance_exhausted")

    def _record(self, running: Running, role: str, ended: float | None) -> CallRecord:
        state = running.state
        number = state.local_number if role == LOCAL else state.remote_number
        answered = running.answered_wall.get(role)
        leg = running.sip_legs.get(role)
        return CallRecord(
            id=f"{state.sid}/{role}", account=state.owner, kind=f"callback_{role}",
            caller=state.owner, callee=number, caller_id=state.caller_id,
            started_at=running.dialled_wall.get(role, answered or self.wall()),
            answered_at=answered, ended_at=ended, end_reason=state.end_reason,
            sip_status=sip_status(state.end_reason if state.end_reason.startswith(role) else "",
                                  answered is not None),
            node=self.node, dialog=leg.persisted_dialog() if leg and ended is None else None,
        )  # fmt: skip

    async def _open_record(self, running: Running, role: str) -> None:
        if self.charging is not None:
            await self.charging.open_record(self._record(running, role, None))

    async def _settle(self, running: Running) -> None:
        """Both legs' records (each dialled leg leaves one) are closed and charged."""
        if self.charging is None:
            return
        ended = self.wall()
        roles = [role for role in (LOCAL, REMOTE) if role in running.dialled_wall]
        for index, role in enumerate(roles):  # the last close drops the reservation with it
            release = running.state.sid if index == len(roles) - 1 else None
            await self.charging.close_record(self._record(running, role, ended), release)

    async def _dial(self, running: Running, role: str, sdp: str) -> None:
        state = running.state
        number = state.local_number if role == LOCAL else state.remote_number
        running.dialled_wall[role] = self.wall()
        try:
            events = LegEvents(self, running, role)
            leg = await self.trunk.dial(number, state.caller_id, sdp, events)
        except TrunkUnavailable as exc:
            log.warning("callback %s: no SIP leg to %s: %s", state.sid, number, exc)
            await self.end(running, f"{role}_trunk_unavailable")
            return
        if state.ended:
            leg.hangup()  # ended while the INVITE went out
            return
        running.sip_legs[role] = leg

    def _expire(self, running: Running, reason: str = "max_duration") -> None:
        self._spawn(self.end(running, reason))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
