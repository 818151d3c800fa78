"""The call service's clock: fallback, ring timeouts and keep-alives, applied by one task."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from lwork.calls.active import Active
from lwork.calls.model import Ended, FallbackStarted, Status

if TYPE_CHECKING:
    from lwork.calls.service import CallService

log = logging.getLogger("lwork.calls")
TICK_S = 0.25


async def tick_forever(service: CallService) -> None:
    while True:
        await asyncio.sleep(TICK_S)
        for active in list(service.calls.values()):
            try:
                await tick(service, active, service.now())
            except Exception:  # one broken call must not stop the timers of the others
                log.exception("timer of call %s", active.call.sid)


async def tick(service: CallService, active: Active, now: float) -> None:
    call = active.call
    if call.status is Status.P2P_IDLE and call.first_rtp_at is None:
        stats = await service.stats_of(active, now)
        caller = stats.legs.get("caller") if stats else None
        if caller is not None and caller.rtp is not None and caller.rtp.packets > 0:
            call.first_rtp_at = now
    for event in call.due_events(now):
        if isinstance(event, FallbackStarted):
            service.spawn(service.fall_back(active))
        elif isinstance(event, Ended):
            await service.end(active, event.reason)
    for role in call.silent_legs(now):
        await keepalive_by_media(service, active, role, now)


async def keepalive_by_media(service: CallService, active: Active, role: str, now: float) -> None:
    """A leg that stopped polling stays up while its owner still sends RTP."""
    stats = await service.stats_of(active, now)
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
