"""Held polls and the wake-ups that end them, over the in-process bus."""

from __future__ import annotations

import asyncio

from lwork.push.bus import InProcessBus, Wake
from lwork.push.channel import Outcome, PollRegistry

DEVICE = "13800138000/A"


async def never_gone() -> None:
    await asyncio.Event().wait()


def wake(n: int) -> Wake:
    return Wake(DEVICE, f"e{n}", {"event": "e", "n": n})


async def test_back_to_back_events_leave_in_one_answer() -> None:
    bus = InProcessBus()
    registry = PollRegistry(bus, hold_s=5)
    poll = await registry.open(DEVICE)
    await bus.publish(wake(1))
    await bus.publish(wake(2))  # before the poll's task has run again
    assert await poll.wait(5, never_gone) is Outcome.WOKEN
    assert [p.body["n"] for p in poll.take()] == [1, 2]
    await bus.publish(wake(3))  # the answer is built: this one waits for the next poll
    assert [p.event_id for p in poll.carried] == ["e1", "e2"]


async def test_a_replaced_poll_carries_nothing() -> None:
    bus = InProcessBus()
    registry = PollRegistry(bus, hold_s=5)
    first = await registry.open(DEVICE)
    second = await registry.open(DEVICE)
    assert await first.wait(5, never_gone) is Outcome.REPLACED
    await bus.publish(wake(1))
    assert first.carried == [] and [p.event_id for p in second.carried] == ["e1"]
