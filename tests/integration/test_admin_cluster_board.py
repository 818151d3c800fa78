"""The nodes' live-call snapshots in Redis (a real redis-server): published only while a
console watches, read by the other nodes, gone when their node stops publishing."""

from __future__ import annotations

import asyncio
from typing import Any

from lwork.admin.cluster_live import SNAPSHOT_TTL_S, ClusterBoard

from fakes.servers import free_port


def rows(node: str, count: int) -> tuple[int, list[dict[str, Any]]]:
    return count, [{"sid": f"{node}@@{i}", "duration_s": i} for i in range(count)]


async def test_snapshots_are_shared_while_watched_and_expire_with_their_node(
    redis_url: str,
) -> None:
    built: list[str] = []

    def build_one() -> tuple[int, list[dict[str, Any]]]:
        built.append("n1")
        return rows("n1", 2)

    one = ClusterBoard(redis_url, "n1", build_one, lambda: 1000.0)
    two = ClusterBoard(redis_url, "n2", lambda: rows("n2", 1), lambda: 1000.0)
    one.start()
    try:
        await asyncio.sleep(1.5)
        assert built == []  # nobody watches: node 1 builds nothing
        first = await two.others()
        assert first.first_viewer and first.reached and first.snapshots == []
        for _ in range(30):  # node 1 publishes within a second of being watched
            seen = await two.others()
            if seen.snapshots:
                break
            await asyncio.sleep(0.1)
        assert not seen.first_viewer
        assert [(s["node"], s["total"], len(s["calls"])) for s in seen.snapshots] == [("n1", 2, 2)]
        # node 2 reads the others only, never itself
        await two.publish()
        assert {s["node"] for s in (await one.others()).snapshots} == {"n2"}
        # node 1 stops publishing (hung, or cut from Redis): its calls leave within the TTL
        assert one._task is not None
        one._task.cancel()
        await asyncio.sleep(SNAPSHOT_TTL_S + 0.5)
        assert (await two.others()).snapshots == []
    finally:
        await one.close()
        await two.close()


async def test_without_redis_a_console_says_it_could_not_reach_the_others() -> None:
    gone = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    board = ClusterBoard(gone, "n1", lambda: rows("n1", 1), lambda: 1000.0)
    try:
        seen = await board.others()
        assert (seen.reached, seen.snapshots) == (False, [])
    finally:
        await board.close()
