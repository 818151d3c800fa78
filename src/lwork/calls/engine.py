"""The call engine: every live call of this node, each a pure ``Bridge`` whose actions it
performs, and the one ticker that drives every call's timers.

A call lives on the node that created it. Events reach its bridge through ``feed``, one at a
time under the call's lock (HTTP requests, the trunk's callbacks and the ticker may all speak
at once), and the actions each event leads to are performed under that lock too, so a record
is never opened after the call's end closed it. An action that learns something the bridge
must know (an app that cannot be reached, RTP seen, the talk-time cap) answers with an event,
handled in the same turn. Dialling is the exception: the trunk's answer may take a while, so it
runs beside the call and feeds what becomes of it later (``sip_legs.py``).

Relay statistics are cached per call and refreshed in batches (``stats_refresh.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from lwork.calls.boundary import MediaControl, PhoneDialer
from lwork.calls.bridge import (
    CALLEE,
    Action,
    Answer,
    Bridge,
    Cap,
    Capped,
    CheckMedia,
    Dial,
    Event,
    Hangup,
    Invite,
    LegAnswered,
    LegRinging,
    MediaSeen,
    MediaSilent,
    OpenRecord,
    Refused,
    Release,
    Released,
    Ring,
    Shape,
    Timing,
    Uninvite,
    Unreachable,
    Warn,
    WatchMedia,
)
from lwork.calls.charging import CallCharging
from lwork.calls.ended import EndedCalls
from lwork.calls.live import LiveCall
from lwork.calls.quality import party_stats
from lwork.calls.stats_refresh import StatsRefresher
from lwork.fraud.service import FraudService
from lwork.media.ng.client import CallStats, NgError
from lwork.push.service import PushService
from lwork.telemetry import Telemetry

log = logging.getLogger("lwork.calls")
TICK_S = 0.25
REFRESH_AHEAD_S = 0.5
"""How long before a cached relay view becomes too old its refresh is asked for: a batch takes
``batch_delay_s`` to gather and a round trip to come back."""


@dataclass(frozen=True)
class CallPolicy:
    timing: Timing
    inbound_timing: Timing
    callback_timing: Timing
    payload_mode: str
    codec_name: str = "AMR"
    country_code: str = ""
    """The trunk's default country code, to map E.164 numbers back to the apps' numbers."""
    stats_refresh_s: float = 2.0
    """Relay queries per call at most this often, however many status reads arrive."""
    ended_memory_s: float = 120.0
    """How long an ended call still answers ``p2p_poll`` with ``release``."""
    transcoding: bool = False
    """The media path transcodes AMR <-> G.711: carriers are offered PCMA and PCMU after AMR,
    and an inbound G.711 offer is answered in G.711 (``carrier_sdp``)."""


class CallEngine:
    def __init__(
        self,
        *,
        node: str,
        media: MediaControl,
        push: PushService,
        trunk: PhoneDialer,
        reachable: Callable[[str], Any],
        owner: Callable[[str], Any],
        policy: CallPolicy,
        monotonic: Callable[[], float],
        wall: Callable[[], float],
        charging: CallCharging,
        fraud: FraudService | None = None,
        telemetry: Telemetry | None = None,
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
        self.wall = wall
        self.charging = charging
        self.fraud = fraud
        self.telemetry = telemetry or Telemetry()
        self.calls: dict[str, LiveCall] = {}
        self.callee_sids: dict[str, str] = {}
        """The session id an answering p2p app holds -> its call's."""
        self.callbacks: dict[str, str] = {}
        """An account -> its live callback (one at a time)."""
        self.ended = EndedCalls(policy.ended_memory_s)
        self._ticker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.refresher = StatsRefresher(media, self.spawn, on_gone=self._relay_lost)

    @property
    def active(self) -> int:
        return len(self.calls)

    def new_bridge(self, shape: Shape) -> Bridge:
        timing = {
            Shape.IN: self.policy.inbound_timing,
            Shape.CALLBACK: self.policy.callback_timing,
        }.get(shape, self.policy.timing)
        return Bridge(shape, self.now(), timing)

    # feeding events, performing actions

    async def launch(self, live: LiveCall) -> None:
        """Take ``live`` in and perform what its bridge does first."""
        self.calls[live.sid] = live
        live.started_wall = self.wall()
        async with live.lock:
            await self._perform(live, live.bridge.start(self.now()))

    async def feed(self, live: LiveCall, event: Event) -> None:
        """Hand ``event`` to the call's bridge and perform what follows; ``Refused`` if it
        cannot happen now."""
        async with live.lock:
            if isinstance(event, LegRinging | LegAnswered) and not live.rang:
                live.rang = True  # the first sign of the other side: post-dial delay ends
                elapsed = self.wall() - live.started_wall
                self.telemetry.call_setup_seconds.observe(elapsed, live.shape.value)
            actions = live.bridge.handle(event, self.now())
            live.next_check = 0.0  # its timers may have changed: the next tick looks again
            await self._perform(live, actions)

    async def end(self, live: LiveCall, reason: str) -> None:
        with contextlib.suppress(Refused):
            await self.feed(live, Release(reason))

    async def _perform(self, live: LiveCall, actions: list[Action]) -> None:
        pending = list(actions)
        while pending:
            action = pending.pop(0)
            try:
                follow = await self._do(live, action)
            except Exception:  # one failed action must not leave the call half-handled
                log.exception("call %s: %s failed", live.sid, action)
                follow = None if isinstance(action, Released) else Release("internal_error")
            if follow is not None:
                pending += live.bridge.handle(follow, self.now())

    async def _do(self, live: LiveCall, action: Action) -> Event | None:
        from lwork.calls.sip_legs import dial  # the legs feed the engine: a cycle by nature

        match action:
            case Dial(role):
                if live.shape is Shape.P2P:
                    self.telemetry.p2p_fallbacks.inc()
                self.spawn(dial(self, live, role))
            case Invite(role):
                live.invited = True
                uuid = live.callee_uuid or ""
                if await self.push.notify(uuid, live.invitation, call_id=live.sid) is None:
                    return Unreachable(role)
            case Uninvite():
                if live.invited:
                    await self.push.cancel_call(live.sid)
            case Ring():
                if live.inbound is not None:
                    live.inbound.ring()
            case Answer(role):
                if live.inbound is not None:
                    live.inbound.answer(live.sdp_for[role])
            case Hangup(role, reason):
                self._hang_up(live, role, reason)
            case OpenRecord(role):
                live.answered_wall[role] = self.wall()
                await self.charging.opened(live, role)
            case Cap(legs, after_s):
                grant = await self.charging.grant(live, legs, after_s)
                return None if grant is None else Capped(grant.minutes * 60.0, grant.final)
            case Warn(seconds_left):
                await self._warn(live, seconds_left)
            case WatchMedia(role):
                if self._packets(self.cached_stats(live, self.now()), live.tag(role)) > 0:
                    return MediaSeen(role)
            case CheckMedia(role):
                return await self._check_media(live, role)
            case Released(reason):
                await self._released(live, reason)
        return None

    def _hang_up(self, live: LiveCall, role: str, reason: str) -> None:
        inbound = live.inbound
        if live.shape is Shape.IN and inbound is not None:
            if reason == "rejected" and CALLEE not in live.answered_wall:
                inbound.reject(486)
            else:
                inbound.hangup()  # BYE once answered, 480 before (a no-op if it ended)
        elif (leg := live.sip.get(role)) is not None:
            leg.hangup()  # CANCEL or BYE

    async def _warn(self, live: LiveCall, seconds_left: float) -> None:
        """Tell the caller the balance ends the call soon (CONTRACT §6.1)."""
        live.invited = True
        warning = {"event": "talk_time_warning", "session_id": live.sid,
                   "seconds_left": round(seconds_left)}  # fmt: skip
        await self.push.notify(live.account, warning, call_id=live.sid)

    async def _check_media(self, live: LiveCall, role: str) -> Event:
        """A leg that stopped reading its status stays up while its owner still sends RTP."""
        stats = await self.fresh_stats(live, self.now())
        packets = self._packets(stats, live.tag(role))
        if packets > live.packets_seen.get(role, 0):
            live.packets_seen[role] = packets
            return MediaSeen(role)
        return MediaSilent(role)

    @staticmethod
    def _packets(stats: CallStats | None, tag: str) -> int:
        leg = stats.legs.get(tag) if stats is not None else None
        return leg.rtp.packets if leg is not None and leg.rtp is not None else 0

    async def _released(self, live: LiveCall, reason: str) -> None:
        self.calls.pop(live.sid, None)
        self.ended.add(live.sid, self.now())
        if live.callee_sid is not None:
            self.callee_sids.pop(live.callee_sid, None)
        if self.callbacks.get(live.account) == live.sid:
            del self.callbacks[live.account]
        log.info("call %s released: %s", live.sid, reason)
        answered = "yes" if live.answered_wall else "no"
        self.telemetry.calls_ended.inc(live.shape.value, reason, answered)
        # First, before the relay's round trip: an invitation (or a warning) waiting in a
        # mailbox must not reach an app that polls just after the end.
        if live.invited:
            await self.push.cancel_call(live.sid)
        with contextlib.suppress(NgError):
            if not live.answered_wall:
                await self.media.forget(live.sid)  # the final statistics are shown to nobody
            elif (final := await self.media.delete(live.sid)) is not None:
                live.set_stats(final, self.now())  # the record keeps the quality at the end
        await self.charging.settle(live)

    def relay_restarted(self) -> None:
        """The relay restarted and lost its calls: end them now (``relay_lost``), rather than
        when an app next reads its status; a callback has no app reading it, and its carrier
        legs would otherwise be billed until they time out."""
        self.spawn(self.refresher.every(list(self.calls.values())))

    def _relay_lost(self, live: LiveCall) -> None:
        """The relay no longer knows this call (it restarted, or timed the media out): end it,
        rather than show the apps a call with no audio until they hang up."""
        if self.calls.get(live.sid) is live:  # not ended meanwhile
            log.warning("call %s: the relay no longer knows it", live.sid)
            self.spawn(self.end(live, "relay_lost"))

    def media_quality(self) -> tuple[float, float]:
        """The mean loss (0..1, over each leg's call so far) and jitter (ms) of the live legs
        the relay measures, from the views already fetched (the scrape asks the relay
        nothing)."""
        losses, jitters = [], []
        for live in self.calls.values():
            if live.stats is None:
                continue
            for leg in live.stats.legs.values():
                quality = leg.quality
                if quality is not None and quality.packets_expected > 0:
                    losses.append(max(0, quality.packets_lost) / quality.packets_expected)
                    jitters.append(quality.jitter_ms)
        if not losses:
            return 0.0, 0.0
        return sum(losses) / len(losses), sum(jitters) / len(jitters)

    # the accounts taking part

    def parties(self) -> set[str]:
        """The accounts taking part in this node's live calls (callers, called apps, callback
        users)."""
        found = {live.account for live in self.calls.values()}
        found.update(live.callee_uuid for live in self.calls.values() if live.callee_uuid)
        return found

    async def end_calls_of(self, uuid: str, reason: str) -> int:
        """End every live call of an account here (deactivated: ``not_actived``); how many."""
        mine = [live for live in self.calls.values() if uuid in (live.account, live.callee_uuid)]
        for live in mine:
            log.info("call %s: account %s %s", live.sid, uuid, reason)
            await self.end(live, reason)
        return len(mine)

    # relay statistics

    async def leg_view(self, live: LiveCall, tag: str, now: float) -> dict[str, Any]:
        """The ``stats`` object of the party on relay leg ``tag``: from the cached relay view
        while it is fresh enough, else once the refresh it waits for has come (CONTRACT
        §6.1)."""
        self.cached_stats(live, now)
        if now - live.stats_fresh_at >= self.policy.stats_refresh_s:  # rare: after a pause
            await self.current_stats(live, now)
        view = live.views.get(tag)
        if view is None:
            view = live.views[tag] = party_stats(live.stats, tag)
        return view

    def cached_stats(self, live: LiveCall, now: float) -> CallStats | None:
        """The relay's view for the timers' first-RTP watch, never waiting for the relay; a
        refresh, batched with other calls', is asked for ``REFRESH_AHEAD_S`` before the view
        is ``stats_refresh_s`` old (at half that age at the latest), so that an app reading
        its status every second never waits, and the relay is asked no more than needed."""
        refresh_s = self.policy.stats_refresh_s
        if now - live.stats_at >= max(refresh_s / 2, refresh_s - REFRESH_AHEAD_S):
            live.stats_at = now
            live.refreshing = self.refresher.request(live, refresh_s / 2)
        return live.stats

    async def current_stats(self, live: LiveCall, now: float) -> CallStats | None:
        """The relay's view with no figure older than ``stats_refresh_s``: a read after a pause
        waits for the refresh. Should the relay not answer, the batch gives up after half
        ``stats_refresh_s``, well within the time another node gives a forwarded read."""
        self.cached_stats(live, now)
        pending = live.refreshing
        if now - live.stats_fresh_at >= self.policy.stats_refresh_s and pending is not None:
            # Shielded: a read that goes away must not cancel the batch others wait for.
            await asyncio.shield(pending)
        return live.stats

    async def fresh_stats(self, live: LiveCall, now: float) -> CallStats | None:
        """The relay's view queried at once, for a timer about to end a call whose owner
        stopped polling: a cached view may predate the packets that keep the leg alive."""
        live.stats_at = now
        await self.refresher.now(live)
        return live.stats

    # the ticker

    async def start_ticker(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever(), name="calls-ticker")

    async def _tick_forever(self) -> None:
        """Each tick looks only at the calls whose next deadline has passed, or that an event
        touched since (``next_check`` 0): with a thousand calls up, nearly all have nothing
        due for many seconds."""
        while True:
            await asyncio.sleep(TICK_S)
            await self._tick_due(self.now())

    async def _tick_due(self, now: float) -> None:
        # A function of its own: the loop's last call would otherwise stay referenced by the
        # ticker's frame until the next call is due, however long ago it ended.
        self.ended.prune(now)
        for live in [c for c in self.calls.values() if c.next_check <= now]:
            try:
                await self.tick(live, now)
            except Exception:  # one broken call must not stop the timers of the others
                log.exception("timer of call %s", live.sid)

    async def tick(self, live: LiveCall, now: float) -> None:
        async with live.lock:
            await self._perform(live, live.bridge.due(now))
            bridge = live.bridge
            deadline = bridge.next_deadline()
            if bridge.watching_media():
                live.next_check = now  # watching for the caller's first RTP: every tick
            else:
                live.next_check = math.inf if deadline is None else deadline

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for live in list(self.calls.values()):
            await self.end(live, "shutdown")
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
