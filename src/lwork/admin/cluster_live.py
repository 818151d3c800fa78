"""The live calls of every node, for a console on any node (several nodes sharing ``bus.url``;
the API workers of one machine without it: ``workers_live``).

Each node keeps its own calls; while an operator watches on any node, every node publishes its
snapshot (the one the page already builds once a second) to Redis under a key of its own that
expires after ``SNAPSHOT_TTL_S``, and a console merges them. A node that stops publishing (it
died, or lost Redis) drops out of the page when its key expires. Nobody watching: no node builds
or publishes anything, so an idle console costs each node one Redis read a second.

Keys: ``lwork:live:wanted`` (set by a console with a viewer, expires after ``WANTED_TTL_S``),
``lwork:live:node:<node>`` (a node's snapshot as JSON) and ``lwork:live:nodes`` (a sorted set of
the nodes that published, by when: an index; the snapshot keys' expiry is the truth).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("lwork.admin")

WANTED_KEY = "lwork:live:wanted"
NODES_KEY = "lwork:live:nodes"
PUBLISH_EVERY_S = 1.0
SNAPSHOT_TTL_S = 3.0
"""A node's snapshot outlives about three of its publications: one late publication does not
blink its calls off the page, and a node that died leaves it within three seconds."""
WANTED_TTL_S = 5.0
FORGET_NODE_S = 3600.0
"""Index entries older than this are pruned (the keys they name expired long ago)."""
CLOSE_WAIT_S = 2.0

Rows = tuple[int, list[dict[str, Any]]]
"""A node's snapshot: how many calls it carries, and its rows (each names its ``sid``)."""


def node_key(node: str) -> str:
    return f"lwork:live:node:{node}"


@dataclass
class OtherNodes:
    """What the other nodes published: their snapshots (``node``, ``total``, ``calls``), and
    whether every node could be asked (False: Redis failed; the page says so)."""

    snapshots: list[dict[str, Any]] = field(default_factory=list)
    reached: bool = True
    first_viewer: bool = False
    """Nobody was watching before this read: the other nodes publish within a second."""


class Board(Protocol):
    """The other nodes' (or workers') live calls for this node's console."""

    def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self) -> None:
        """This node's calls changed (a hang-up here): no console may show the old ones."""

    async def others(self) -> OtherNodes: ...


def parse_snapshot(raw: bytes | str | None) -> dict[str, Any] | None:
    """One node's published snapshot, or None if it is not one (garbage in Redis, a node of
    another version): a bad key costs its node's rows, never the page."""
    if raw is None:
        return None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return snapshot_of(body)


def snapshot_of(body: object) -> dict[str, Any] | None:
    """A node's snapshot as this node's console lists it, from what it sent, or None."""
    if not isinstance(body, dict):
        return None
    node, total, calls = body.get("node"), body.get("total"), body.get("calls")
    if not isinstance(node, str) or not isinstance(total, int) or not isinstance(calls, list):
        return None
    rows = [row for row in calls if isinstance(row, dict) and isinstance(row.get("sid"), str)]
    return {"node": node, "total": max(total, len(rows)), "calls": rows}


class ClusterBoard:
    """This node's publisher, and the reader of the other nodes' snapshots."""

    def __init__(
        self, url: str, node: str, build: Callable[[], Rows], wall: Callable[[], float]
    ) -> None:
        """``build()``: this node's snapshot (made only while someone watches)."""
        import redis.asyncio as redis
        from redis.exceptions import RedisError

        self._redis = redis.Redis.from_url(url)
        self._errors: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)
        self.node = node
        self._build = build
        self._wall = wall
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.published = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="console-board")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=CLOSE_WAIT_S)
        with contextlib.suppress(Exception):  # the key expires by itself anyway
            await asyncio.wait_for(self._redis.delete(node_key(self.node)), CLOSE_WAIT_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._redis.aclose(), CLOSE_WAIT_S)

    async def _run(self) -> None:
        while True:
            try:
                if await self._redis.exists(WANTED_KEY):
                    await self.publish()
                if self._failing:
                    log.info("console: live calls published to Redis again")
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: this node's calls leave the other consoles
                if not self._failing:
                    log.warning("console: cannot publish live calls to Redis: %s", exc)
                self._failing = True
            await asyncio.sleep(PUBLISH_EVERY_S)

    async def publish(self) -> None:
        """This node's snapshot, now (also right after a hang-up, so no console shows the
        ended call for up to a second more)."""
        total, rows = self._build()
        at = self._wall()
        body = json.dumps(
            {"node": self.node, "at": at, "total": total, "calls": rows}, ensure_ascii=False
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(node_key(self.node), body, px=int(SNAPSHOT_TTL_S * 1000))
            pipe.zadd(NODES_KEY, {self.node: at})
            pipe.zremrangebyscore(NODES_KEY, "-inf", at - FORGET_NODE_S)
            await pipe.execute()
        self.published += 1

    async def others(self) -> OtherNodes:
        """The other nodes' latest snapshots; marks the console as watched, so they publish."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(WANTED_KEY, b"1", px=int(WANTED_TTL_S * 1000), get=True)
                pipe.zrange(NODES_KEY, 0, -1)
                was_wanted, names = await pipe.execute()
            others = sorted({n.decode() for n in names} - {self.node})
            raws = await self._redis.mget([node_key(n) for n in others]) if others else []
        except self._errors as exc:
            log.warning("console: cannot read the other nodes' live calls: %s", exc)
            return OtherNodes(reached=False)
        found = [s for s in map(parse_snapshot, raws) if s is not None]
        return OtherNodes(found, True, first_viewer=was_wanted is None)


def merge(node: str, own: Rows, others: list[dict[str, Any]], cap: int) -> Rows:
    """All nodes' calls as one list: the ``cap`` longest, each row naming its ``node``; the
    total counts every call, listed or not."""
    total, rows = own
    merged = [{**row, "node": node} for row in rows]
    for snapshot in others:
        if snapshot["node"] == node:  # never twice, whatever a stale key says
            continue
        total += snapshot["total"]
        merged.extend({**row, "node": snapshot["node"]} for row in snapshot["calls"])
    merged.sort(key=lambda row: -_duration(row))
    return total, merged[:cap]


def _duration(row: dict[str, Any]) -> int:
    value = row.get("duration_s")
    return value if isinstance(value, int) else 0
