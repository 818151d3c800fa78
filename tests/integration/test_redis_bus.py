"""The Redis bus against a real redis-server: delivery, bad messages, and an outage."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as redis

from lwork.push.bus import (
    BusMessage,
    Kick,
    RedisBus,
    Replaced,
    Resync,
    SessionEnded,
    SessionsChanged,
    Wake,
)


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
        wake = Wake("u/A", "e1", {"event": "x", "n": [1, 2]})
        await bus.publish(wake)
        await until(lambda: wake in seen)

        await admin.publish("lwork:test-bus", b"\x00not json")
        await admin.publish("lwork:test-bus", b'{"kind":"nonsense","device":"u/A"}')
        await until(lambda: bus.bad_messages == 2)

        await admin.client_kill_filter(_type="pubsub")  # the reader's connection drops
        await until(lambda: Resync() in seen)
        kick = Kick("u/A")
        await bus.publish(kick)
        await until(lambda: kick in seen)
        assert seen == [wake, Resync(), kick]
    finally:
        await admin.aclose()
        await bus.close()


GARBAGE = [
    b"\x00not json",
    b"[1, 2]",
    b'{"kind":"nonsense","device":"u/A"}',
    b'{"kind":"wake","device":"u/A"}',  # the fields a wake needs are missing
    b'{"kind":"kick","device":7}',
    b'{"kind":"call_request","node":"n1","request_id":"r","origin":"n2","op":"x","sid":"s",'
    b'"args":"not an object"}',
]


async def test_garbage_is_logged_and_dropped_and_delivery_goes_on(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = RedisBus(redis_url, channel="lwork:test-garbage")
    seen: list[BusMessage] = []

    def broken(message: BusMessage) -> None:
        raise RuntimeError("a subscriber's bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    await bus.start()
    admin = redis.Redis.from_url(redis_url)
    try:
        with caplog.at_level(logging.WARNING, logger="lwork.bus"):
            for raw in GARBAGE:
                await admin.publish("lwork:test-garbage", raw)
            messages = [SessionEnded("u/A"), SessionsChanged("u"), Replaced("u/A", "p2")]
            for message in messages:
                await bus.publish(message)
            await until(lambda: len(seen) == len(messages))
        assert seen == messages  # no Resync: the reader never had to reconnect
        assert bus.bad_messages == len(GARBAGE)
        dropped = [r for r in caplog.records if "malformed bus message" in r.getMessage()]
        assert len(dropped) == len(GARBAGE)
        assert sum("subscriber failed" in r.getMessage() for r in caplog.records) == 3
    finally:
        await admin.aclose()
        await bus.close()
