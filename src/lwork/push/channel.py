"""Held long polls on this node, and what ends them (CONTRACT §5).

One poll per device: a newer poll from the same device, on any node, ends the older one with
``overtime``. A poll ends early when its device's mailbox gets an event (``wake``, usually
carrying the event, which the poll then answers with directly), when its session is ended by a
login on another device (``kick``) or by a logout or password change (``ended``), or when the
client goes away. The registry registers a poll
*before* the mailbox is read, so an event stored in between still wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable

from lwork.ids import random_hex
from lwork.push.bus import (
    Bus,
    BusMessage,
    BusUnavailable,
    Kick,
    Replaced,
    Resync,
    SessionEnded,
    Wake,
)
from lwork.push.mailbox import Pending

log = logging.getLogger("lwork.push")


class Outcome(enum.Enum):
    WOKEN = "woken"
    KICKED = "kicked"
    ENDED = "ended"
    REPLACED = "replaced"
    TIMEOUT = "timeout"
    GONE = "gone"


class HeldPoll:
    __slots__ = ("device", "poll_id", "carried", "taken", "_outcome")

    def __init__(self, device: str, loop: asyncio.AbstractEventLoop) -> None:
        self.device = device
        self.poll_id = random_hex(8)
        self.carried: list[Pending] = []
        """The events that woke this poll, when their wake-up carried them."""
        self.taken = False
        """The answer has been built from ``carried``: later wake-ups are for the next poll."""
        self._outcome: asyncio.Future[Outcome] = loop.create_future()

    @property
    def ended(self) -> bool:
        return self._outcome.done()

    def carries(self) -> bool:
        """Whether a wake-up's event can still join this poll's answer: until the answer is
        built, so back-to-back events leave in one answer, not one per poll."""
        if self.taken:
            return False
        return not self._outcome.done() or self._outcome.result() is Outcome.WOKEN

    def take(self) -> list[Pending]:
        self.taken = True
        return self.carried

    def end(self, outcome: Outcome) -> None:
        # The first reason wins: a poll replaced and then woken still answers overtime.
        if not self._outcome.done():
            self._outcome.set_result(outcome)

    async def wait(self, hold_s: float, gone: Callable[[], Awaitable[None]]) -> Outcome:
        if self._outcome.done():
            return self._outcome.result()
        watcher = asyncio.ensure_future(gone())
        try:
            done, _ = await asyncio.wait(
                (self._outcome, watcher), timeout=hold_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            watcher.cancel()
        if self._outcome.done():
            return self._outcome.result()
        return Outcome.GONE if watcher in done else Outcome.TIMEOUT


class PollRegistry:
    """The polls this node holds, fed by the bus."""

    def __init__(self, bus: Bus, hold_s: float) -> None:
        self._bus = bus
        self._hold_s = hold_s
        self._held: dict[str, HeldPoll] = {}
        self.replaced = 0
        bus.subscribe(self._on_message)

    @property
    def held(self) -> int:
        """Polls held right now (a metric; returns to zero when every client has gone)."""
        return len(self._held)

    async def open(self, device: str) -> HeldPoll:
        poll = HeldPoll(device, asyncio.get_running_loop())
        older = self._held.get(device)
        self._held[device] = poll
        if older is not None:
            older.end(Outcome.REPLACED)
            self.replaced += 1
        try:
            await self._bus.mark_held(device, poll.poll_id, self._hold_s + 5)
            await self._bus.publish(Replaced(device, poll.poll_id))
        except BusUnavailable as exc:
            # Held here all the same: this node's events reach it, and when the bus returns
            # (Resync) it reads its mailbox for the others' (a poll on another node of the same
            # device is replaced at the latest when its hold ends).
            log.warning("poll of %s held without the bus: %s", device, exc)
        return poll

    async def close(self, poll: HeldPoll) -> None:
        if self._held.get(poll.device) is poll:
            del self._held[poll.device]
            with contextlib.suppress(BusUnavailable):  # the mark expires with its TTL
                await self._bus.unmark_held(poll.device, poll.poll_id)

    def _on_message(self, message: BusMessage) -> None:
        match message:
            case Resync():
                # Wake-ups may have been lost: every poll reads its mailbox again now rather than
                # sit on a missed event until its hold ends.
                for held in self._held.values():
                    held.end(Outcome.WOKEN)
            case Wake(device=device, event_id=event_id, event=event, at=at):
                if (poll := self._held.get(device)) is not None:
                    if poll.carries():
                        poll.carried.append(Pending(event_id, event, at))
                    poll.end(Outcome.WOKEN)
            case Kick(device=device):
                if (poll := self._held.get(device)) is not None:
                    poll.end(Outcome.KICKED)
            case SessionEnded(device=device):
                if (poll := self._held.get(device)) is not None:
                    poll.end(Outcome.ENDED)
            case Replaced(device=device, poll_id=poll_id):
                poll = self._held.get(device)
                if poll is not None and poll.poll_id != poll_id:
                    poll.end(Outcome.REPLACED)
                    self.replaced += 1
