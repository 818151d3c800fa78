"""The Redis bus against a real redis-server: delivery, bad messages, and an outage."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis

from lwork.push.bus import BusMessage, RedisBus


async def until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_messages_cross_and_an_outage_is_announced_as_resync(redis_url: str) -> None:
    bus = RedisBus(redis_url, channel="lwork:test-bus")
    seen: list[BusMessage] = []
    bus.subscribe(seen.append)
    await bus.start()
    admin = redis.Redis.from_url(redis_url)
    try:
        wake = BusMessage("wake", "u/A", event_id="e1", event={"event": "x", "n": [1, 2]})
        await bus.publish(wake)
        await until(lambda: wake in seen)

        await admin.publish("lwork:test-bus", b"\x00not json")
        await admin.publish("lwork:test-bus", b'{"kind":"nonsense","device":"u/A"}')
        await until(lambda: bus.bad_messages == 2)

        await admin.client_kill_filter(_type="pubsub")  # the reader's connection drops
        await until(lambda: BusMessage("resync", "") in seen)
        kick = BusMessage("kick", "u/A")
        await bus.publish(kick)
        await until(lambda: kick in seen)
        assert [m.kind for m in seen] == ["wake", "resync", "kick"]
    finally:
        await admin.aclose()
        await bus.close()
