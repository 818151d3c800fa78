"""The call service's clock: fallback, ring timeouts, talk-time caps and keep-alives, applied
by one task.

Each tick looks only at the calls whose next deadline (``Call.next_deadline``) has passed, or
that an event touched since (``Active.next_check`` reset to 0), not at every call: with a
thousand calls up, nearly all have nothing due for many seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING

from lwork.calls.active import Active
from lwork.calls.model import Call, Ended, FallbackStarted, Status, TalkTimeWarning
from lwork.calls.sip_leg import fall_back, warn

if TYPE_CHECKING:
    from lwork.calls.service import CallService

log = logging.getLogger("lwork.calls")
TICK_S = 0.25


async def tick_forever(service: CallService) -> None:
    while True:
        await asyncio.sleep(TICK_S)
        now = service.now()
        service.ended.prune(now)
        for active in [a for a in service.calls.values() if a.next_check <= now]:
            try:
                await tick(service, active, now)
            except Exception:  # one broken call must not stop the timers of the others
                log.exception("timer of call %s", active.call.sid)
            active.next_check = next_check(active.call, now)


def next_check(call: Call, now: float) -> float:
    if call.status is Status.P2P_IDLE and call.first_rtp_at is None:
        return now  # watching for the caller's first RTP packet: every tick
    deadline = call.next_deadline()
    return math.inf if deadline is None else deadline


async def tick(service: CallService, active: Active, now: float) -> None:
    call = active.call
    if call.status is Status.P2P_IDLE and call.first_rtp_at is None:
        stats = service.cached_stats(active, now)  # refreshed in batches, every stats_refresh_s
        caller = stats.legs.get("caller") if stats else None
        if caller is not None and caller.rtp is not None and caller.rtp.packets > 0:
            call.first_rtp_at = now
    for event in call.due_events(now):
        if isinstance(event, FallbackStarted):
            service.spawn(fall_back(service, active))
        elif isinstance(event, TalkTimeWarning):
            await warn(service, active, event)
        elif isinstance(event, Ended):
            await service.end(active, event.reason)
    for role in call.silent_legs(now):
        await keepalive_by_media(service, active, role, now)


async def keepalive_by_media(service: CallService, active: Active, role: str, now: float) -> None:
    """A leg that stopped polling stays up while its owner still sends RTP."""
    stats = await service.fresh_stats(active, now)
    leg = stats.legs.get(role) if stats else None
    packets = leg.rtp.packets if leg is not None and leg.rtp is not None else 0
    if packets > active.packets_seen.get(role, 0):
        active.packets_seen[role] = packets
        if role == "caller":
            active.call.caller_alive_at = now
        else:
            active.call.callee_alive_at = now
        return
    await service.end(active, f"keepalive_timeout_{role}")
