"""The console's board across ``http.workers``: three workers' call routers on a real local hub
(Unix socket pairs, as the worker processes hold them). A worker builds its snapshot only when
another's console asks, once for several consoles asking within the same second, afresh after a
hang-up; a worker that does not answer is left out and the view says so."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lwork.admin.cluster_live import Rows
from lwork.admin.workers_live import WorkersBoard
from lwork.calls.router import CallRouter
from lwork.push.local_bus import Hub, LocalBus

COUNT = 3


class Worker:
    def __init__(self, hub: Hub, index: int, clock: list[float]) -> None:
        ours, self.theirs = socket.socketpair()
        hub.attach(ours)
        self.bus = LocalBus(self.theirs, on_lost=lambda: None)
        self.node = f"api1-w{index}"
        self.router = CallRouter(self.node, self.bus, timeout_s=0.3)
        self.builds = 0
        self.board = WorkersBoard(self.router, self.node, index, COUNT, self.build,
                                  lambda: clock[0])  # fmt: skip

    def build(self) -> Rows:
        self.builds += 1
        return 1, [{"sid": f"{self.node}@@call", "duration_s": self.builds}]


@pytest.fixture
async def workers() -> AsyncIterator[tuple[list[Worker], list[float]]]:
    hub, clock = Hub(), [100.0]
    found = [Worker(hub, index, clock) for index in range(COUNT)]
    for worker in found:
        await worker.bus.start()
    yield found, clock
    for worker in found:
        await worker.router.close()
        await worker.bus.close()
    await hub.close()


def listed(snapshots: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return sorted((s["node"], s["total"]) for s in snapshots)


async def test_workers_build_only_when_asked_and_once_a_second(
    workers: tuple[list[Worker], list[float]],
) -> None:
    (w0, w1, w2), clock = workers
    await asyncio.sleep(0.2)
    assert [w.builds for w in (w0, w1, w2)] == [0, 0, 0]  # nobody watches: nothing is built

    seen = await w0.board.others()
    assert seen.reached and listed(seen.snapshots) == [("api1-w1", 1), ("api1-w2", 1)]
    assert seen.snapshots[0]["calls"][0]["sid"].startswith(seen.snapshots[0]["node"] + "@@")
    assert [w.builds for w in (w0, w1, w2)] == [0, 1, 1]

    # a console on worker 1 too, within the same second: worker 2 builds no second snapshot
    clock[0] += 0.5
    assert listed((await w1.board.others()).snapshots) == [("api1-w0", 1), ("api1-w2", 1)]
    assert [w.builds for w in (w0, w1, w2)] == [1, 1, 1]
    clock[0] += 0.5  # a second after the first: afresh
    await w0.board.others()
    assert w2.builds == 2
    await w2.board.publish()  # a hang-up on worker 2: the next ask sees it at once
    await w0.board.others()
    assert w2.builds == 3


async def test_a_worker_that_does_not_answer_is_left_out_and_said_to_be(
    workers: tuple[list[Worker], list[float]],
) -> None:
    (w0, w1, w2), _ = workers
    await w2.bus.close()  # gone (restarting): the hub has no one to hand its requests to
    w2.theirs.close()
    seen = await asyncio.wait_for(w0.board.others(), 2.0)
    assert not seen.reached and listed(seen.snapshots) == [("api1-w1", 1)]
