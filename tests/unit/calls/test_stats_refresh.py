"""Batched statistics refreshes, against a relay faked at the ng boundary."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

from lwork.calls.bridge import Bridge, Shape, Timing
from lwork.calls.live import LiveCall
from lwork.calls.stats_refresh import StatsRefresher
from lwork.media.ng.client import CallStats, NgTimeout, SdpResult


def stats(packets: int) -> CallStats:
    return CallStats(0, 0, {}, packets, 0, 0, 0, {})


class FakeRelay:
    """The relay as `NgClient.query_many` presents it."""

    def __init__(self, *, known: set[str] | None = None) -> None:
        self.known = known
        self.batches: list[list[str]] = []
        self.timeouts = 0
        self.packets = 1
        self.silent = False

    def _knows(self, call_id: str) -> bool:
        return self.known is None or call_id in self.known

    async def query_many(self, call_ids: Sequence[str]) -> dict[str, CallStats]:
        if self.timeouts:
            self.timeouts -= 1
            raise NgTimeout("no reply")
        if self.silent:  # the relay's answer is late: the client's own timeout is long
            await asyncio.sleep(3600)
        self.batches.append(list(call_ids))
        return {c: stats(self.packets) for c in call_ids if self._knows(c)}

    async def query(self, call_id: str, from_tag: str | None = None) -> CallStats:
        raise NotImplementedError

    async def offer(self, call_id: str, from_tag: str, sdp: str) -> SdpResult:
        raise NotImplementedError

    async def answer(self, call_id: str, from_tag: str, to_tag: str, sdp: str) -> SdpResult:
        raise NotImplementedError

    async def delete(self, call_id: str, from_tag: str | None = None) -> CallStats | None:
        raise NotImplementedError

    async def relay_address(self, call_id: str, tag: str) -> tuple[str, int]:
        raise NotImplementedError

    async def play_dtmf(self, call_id: str, from_tag: str, digit: str) -> None:
        raise NotImplementedError


def active(n: int) -> LiveCall:
    bridge = Bridge(Shape.P2P, 0.0, Timing(fallback_s=5, ring_timeout_s=60, keepalive_s=60))
    return LiveCall(f"n1@@{n:032x}", bridge, "alice", {"caller": "alice", "callee": "139"})


class Tasks:
    def __init__(self) -> None:
        self.running: list[asyncio.Task[None]] = []

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self.running.append(asyncio.create_task(coroutine))

    async def settle(self) -> None:
        while self.running:
            await self.running.pop()


async def test_requests_meanwhile_go_out_together_in_bounded_batches() -> None:
    relay, tasks = FakeRelay(), Tasks()
    refresher = StatsRefresher(relay, tasks.spawn, batch_delay_s=0.01, batch_size=4)
    calls = [active(n) for n in range(10)]
    for call in calls:
        call.views["caller"] = {"stale": True}
        refresher.request(call)
    refresher.request(calls[0])  # asked twice before the batch left: once in it
    await tasks.settle()
    assert [len(batch) for batch in relay.batches] == [4, 4, 2]
    assert sorted(sum(relay.batches, [])) == sorted(c.sid for c in calls)
    assert all(c.stats == stats(1) and c.views == {} for c in calls)

    relay.packets = 2
    refresher.request(calls[3])
    await tasks.settle()
    assert relay.batches[-1] == [calls[3].sid] and calls[3].stats == stats(2)


async def test_a_timeout_loses_one_refresh_only() -> None:
    relay, tasks = FakeRelay(), Tasks()
    relay.timeouts = 1
    refresher = StatsRefresher(relay, tasks.spawn, batch_delay_s=0.01)
    call = active(1)
    refresher.request(call)
    await tasks.settle()
    assert call.stats is None
    refresher.request(call)
    await tasks.settle()
    assert call.stats == stats(1)


async def test_calls_the_relay_no_longer_knows_keep_their_last_stats_and_are_reported() -> None:
    relay, tasks = FakeRelay(), Tasks()
    gone_calls: list[LiveCall] = []
    refresher = StatsRefresher(relay, tasks.spawn, batch_delay_s=0.01, on_gone=gone_calls.append)
    kept, gone = active(1), active(2)
    kept.set_stats(stats(9), 0.0)
    gone.set_stats(stats(9), 0.0)
    relay.known = {kept.sid}
    refresher.request(kept)
    refresher.request(gone)
    await tasks.settle()
    assert (kept.stats, gone.stats) == (stats(1), stats(9))
    assert gone_calls == [gone]
    await refresher.now(gone)  # the same when a timer asks at once
    assert gone.stats == stats(9) and relay.batches[-1] == [gone.sid]
    assert gone_calls == [gone, gone]


async def test_a_relay_that_does_not_answer_reports_no_call_gone() -> None:
    relay, tasks = FakeRelay(known=set()), Tasks()
    relay.timeouts = 1
    gone_calls: list[LiveCall] = []
    refresher = StatsRefresher(relay, tasks.spawn, batch_delay_s=0.01, on_gone=gone_calls.append)
    refresher.request(active(1))
    await tasks.settle()
    assert gone_calls == []  # silence is not "unknown"


async def test_the_reads_waiting_for_a_late_relay_are_let_go_after_give_up_s() -> None:
    relay, tasks = FakeRelay(), Tasks()
    relay.silent = True
    refresher = StatsRefresher(relay, tasks.spawn, batch_delay_s=0.01)
    call = active(1)
    call.set_stats(stats(7), 0.0)
    waited = refresher.request(call, give_up_s=0.1)
    await asyncio.wait_for(asyncio.shield(waited), 1.0)  # done although the relay is silent
    assert call.stats == stats(7)  # the last view stays
    for task in tasks.running:
        task.cancel()
