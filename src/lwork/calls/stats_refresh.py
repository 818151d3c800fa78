"""Relay statistics for call statuses, fetched in batches.

A thousand apps polling their call status every second means each call's statistics are
refreshed every ``stats_refresh_s``: 500 relay round trips a second for 1,000 calls if each
were a ``query``, and decoding a ``query`` reply (~2.5 KB of bencode) costs the API node more
than answering the status poll itself. So refreshes wait ``batch_delay_s`` to gather, then go
out as one ``query_many`` per ``batch_size`` calls: to the built-in relay, one ``lwork stats``
request whose compact reply has a tenth of the tokens (rtpengine gets a ``query`` per call).
Status reads ask for a refresh when the cached view is half ``stats_refresh_s`` old, so an app
polling every second never waits; a read after a pause, whose cache is older than
``stats_refresh_s``, waits for its batch (CONTRACT §6.1: no figure is older than that).

The batches are small and frequent (5 ms apart) rather than large and rare: with 1,000 calls
polled and 50 ms between batches, bench.calls_bench saw 1-2 % of all status polls, none of them
waiting for a batch, answered ~50 ms late and the server idle 15 % of the time (10,400 polls/s,
p99 52 ms); at 5 ms, 11,500/s with p99 6 ms and the server busy. The cost is more, smaller
``lwork stats`` requests (about 4 calls each at 700 refreshes/s), which the relay answers for
about the same CPU per call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from lwork.calls.boundary import MediaControl
from lwork.calls.live import LiveCall
from lwork.media.ng.client import NgError

log = logging.getLogger("lwork.calls")


class StatsRefresher:
    def __init__(
        self,
        media: MediaControl,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        *,
        batch_delay_s: float = 0.005,
        batch_size: int = 64,
        on_gone: Callable[[LiveCall], None] | None = None,
    ) -> None:
        self._media = media
        self._spawn = spawn
        self._on_gone = on_gone
        """Told of a call the relay answered it does not know (restarted, or it timed the
        media out): the call has no media any more."""
        self.batch_delay_s = batch_delay_s
        self.batch_size = batch_size
        self._pending: dict[str, LiveCall] = {}
        self._batch: asyncio.Future[None] | None = None

    def request(self, active: LiveCall, give_up_s: float | None = None) -> asyncio.Future[None]:
        """Refresh ``active.stats`` soon, together with the other calls asked for meanwhile;
        the future is done when the batch has been answered (or failed), or after
        ``give_up_s`` (the reads waiting for it show the last view)."""
        if self._batch is None:
            loop = asyncio.get_running_loop()
            self._batch = loop.create_future()
            self._spawn(self._flush_later(self._batch))
            if give_up_s is not None:
                # One timer per batch, not one per waiting read.
                loop.call_later(self.batch_delay_s + give_up_s, _resolve, self._batch)
        self._pending[active.sid] = active
        return self._batch

    async def now(self, active: LiveCall) -> None:
        """Refresh ``active.stats`` at once (a timer about to end a silent call)."""
        await self._refresh([active])

    async def every(self, calls: list[LiveCall]) -> None:
        """Refresh all of ``calls`` now, in batches (the relay restarted: find what it lost)."""
        size = self.batch_size
        await asyncio.gather(
            *(self._refresh(calls[i : i + size]) for i in range(0, len(calls), size))
        )

    async def _flush_later(self, done: asyncio.Future[None]) -> None:
        try:
            await asyncio.sleep(self.batch_delay_s)
            pending, self._pending, self._batch = list(self._pending.values()), {}, None
            batches = [
                pending[i : i + self.batch_size] for i in range(0, len(pending), self.batch_size)
            ]
            await asyncio.gather(*(self._refresh(batch) for batch in batches))
        finally:
            if self._batch is done:  # cancelled before it went out
                self._pending, self._batch = {}, None
            if not done.done():
                done.set_result(None)

    async def _refresh(self, batch: list[LiveCall]) -> None:
        asked = [active.stats_at for active in batch]  # the figures will be no older
        try:
            found = await self._media.query_many([active.sid for active in batch])
        except NgError as exc:
            log.debug("stats of %d calls: %s", len(batch), exc)
            return
        for active, asked_at in zip(batch, asked, strict=True):
            stats = found.get(active.sid)
            if stats is not None:
                active.set_stats(stats, asked_at)
            elif self._on_gone is not None:
                self._on_gone(active)


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
