"""The bus between API nodes: wake-ups, kicks and replaced polls reach the node holding a poll;
requests for a call reach the node holding the call.

``InProcessBus`` (one node, the default) delivers to this process. ``RedisBus`` publishes on one
Redis pub/sub channel that every node subscribes to, and keeps a short-lived key per held poll so
any node can tell whether a device is listening (or needs a third-party push).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Literal, Protocol

import msgspec

log = logging.getLogger("lwork.bus")


class BusMessage(msgspec.Struct, frozen=True):
    """``device`` is a device key (``kick``: the account logged in elsewhere; ``ended``: the
    device's session was ended by a logout or a password change), except for ``session`` (an
    account's sessions changed), where it is the account's uuid. A ``wake`` may carry the event
    that caused it, so the poll it ends can answer without reading the mailbox back. ``resync``
    is never sent: a bus delivers it locally after an outage, when messages may have been
    missed. ``call`` and ``call_reply`` carry a request for a call to the node holding it and
    that node's answer (``device`` is then the node addressed)."""

    kind: Literal["wake", "kick", "ended", "replaced", "session", "resync", "call", "call_reply"]
    device: str
    poll_id: str = ""
    event_id: str = ""
    event: dict[str, Any] | None = None
    request_id: str = ""
    payload: dict[str, Any] | None = None


Handler = Callable[[BusMessage], None]


class Bus(Protocol):
    def subscribe(self, handler: Handler) -> None: ...

    async def publish(self, message: BusMessage) -> None: ...

    async def mark_held(self, device: str, poll_id: str, ttl_s: float) -> None: ...

    async def unmark_held(self, device: str, poll_id: str) -> None: ...

    async def is_held(self, device: str) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class InProcessBus:
    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._held: dict[str, str] = {}

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def publish(self, message: BusMessage) -> None:
        for handler in self._handlers:
            handler(message)

    async def mark_held(self, device: str, poll_id: str, ttl_s: float) -> None:
        self._held[device] = poll_id

    async def unmark_held(self, device: str, poll_id: str) -> None:
        if self._held.get(device) == poll_id:
            del self._held[device]

    async def is_held(self, device: str) -> bool:
        return device in self._held

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


_DELETE_IF_EQUAL = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisBus:
    """Pub/sub over Redis; reconnects with backoff and never lets a bad message kill the reader."""

    def __init__(self, url: str, channel: str = "lwork:bus") -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url)
        self._channel = channel
        self._handlers: list[Handler] = []
        self._reader: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._decoder = msgspec.json.Decoder(BusMessage)
        self.bad_messages = 0

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def publish(self, message: BusMessage) -> None:
        await self._redis.publish(self._channel, msgspec.json.encode(message))

    def _held_key(self, device: str) -> str:
        return f"lwork:held:{device}"

    async def mark_held(self, device: str, poll_id: str, ttl_s: float) -> None:
        await self._redis.set(self._held_key(device), poll_id, px=int(ttl_s * 1000))

    async def unmark_held(self, device: str, poll_id: str) -> None:
        # Only our own mark: a newer poll on another node may have replaced it meanwhile.
        await self._redis.eval(_DELETE_IF_EQUAL, 1, self._held_key(device), poll_id)

    async def is_held(self, device: str) -> bool:
        return bool(await self._redis.exists(self._held_key(device)))

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="redis-bus")
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._redis.aclose()

    async def _read_forever(self) -> None:
        delay = 0.1
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    if self._subscribed.is_set():  # back after an outage: caches may be stale
                        self._deliver(BusMessage("resync", ""))
                    self._subscribed.set()
                    delay = 0.1
                    async for raw in pubsub.listen():
                        if raw.get("type") == "message":
                            self._dispatch(raw["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: keep the node alive, retry
                log.warning("redis bus reader: %s; reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _dispatch(self, data: bytes) -> None:
        try:
            message = self._decoder.decode(data)
        except msgspec.DecodeError:
            self.bad_messages += 1
            return
        self._deliver(message)

    def _deliver(self, message: BusMessage) -> None:
        for handler in self._handlers:
            handler(message)
