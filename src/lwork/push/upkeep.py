"""Periodic housekeeping of the push channel, off the request path.

Every ``touch_every_s`` the mailbox's write-ahead log is checkpointed (SQLite) and the deferred
long-poll writes reach the sessions table; every ``mailbox_every_s`` expired events are deleted
and over-full mailboxes trimmed. A failure (the database restarting, say) is logged and retried
on the next round; it never ends the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from lwork.accounts.poll_touches import PollTouches
from lwork.push.mailbox import Mailbox

log = logging.getLogger("lwork.push")


class Upkeep:
    def __init__(
        self,
        touches: PollTouches,
        mailbox: Mailbox,
        wall: Callable[[], float],
        touch_every_s: float = 1.0,
        mailbox_every_s: float = 30.0,
    ) -> None:
        self._touches = touches
        self._mailbox = mailbox
        self._wall = wall
        self._touch_every_s = touch_every_s
        self._mailbox_every_s = mailbox_every_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="push-upkeep")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:  # the last deferred polls, so presence survives a clean restart
            await self._touches.flush(self._wall())
        except Exception:
            log.exception("could not record the last long polls")

    async def _run(self) -> None:
        mailbox_due = 0.0
        while True:
            await asyncio.sleep(self._touch_every_s)
            now = self._wall()
            try:
                await self._mailbox.checkpoint()
                await self._touches.flush(now)
                if now >= mailbox_due:
                    mailbox_due = now + self._mailbox_every_s
                    await self._mailbox.upkeep(now)
            except Exception:
                log.exception("push upkeep failed; retrying next round")
