"""Live calls of accounts that BOSS deactivated end (``not_actived``), on every node.

A deactivation may come from another process (``lwork boss deactivate``) or another node,
which write only the database: so each node asks, every ``calls.account_sweep_s``, which of the
accounts in its live calls are no longer active (one query), and ends their calls. A
deactivation through this process's own provisioning service ends them at once
(``CallService.end_calls_of``); the sweep is the path that needs no message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

log = logging.getLogger("lwork.calls")

DEACTIVATED = "not_actived"


class LiveCalls(Protocol):
    """Calls held on this node (app and phone calls; callbacks)."""

    def parties(self) -> set[str]: ...

    async def end_calls_of(self, uuid: str, reason: str) -> int: ...


class AccountSweep:
    def __init__(
        self,
        calls: Sequence[LiveCalls],
        inactive_among: Callable[[list[str]], Awaitable[set[str]]],
        period_s: float,
    ) -> None:
        self._calls = calls
        self._inactive_among = inactive_among
        self.period_s = period_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="calls-account-sweep")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def sweep(self) -> int:
        """End the live calls of deactivated accounts; how many ended."""
        parties = set().union(*(calls.parties() for calls in self._calls))
        if not parties:
            return 0
        ended = 0
        for uuid in await self._inactive_among(sorted(parties)):
            for calls in self._calls:
                ended += await calls.end_calls_of(uuid, DEACTIVATED)
        return ended

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            try:
                await self.sweep()
            except Exception:  # a database hiccup must not stop the next sweeps
                log.exception("sweep of deactivated accounts' calls")
