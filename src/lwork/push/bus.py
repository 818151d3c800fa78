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
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import msgspec

log = logging.getLogger("lwork.bus")
CLOSE_WAIT_S = 2.0
"""How long stopping waits for the Redis reader and connections."""


class BusUnavailable(Exception):
    """The bus did not take a message or answer a question: Redis is down or unreachable.
    What it carried is a hint (the mailboxes are the truth), so callers go on without it."""


class _Message(msgspec.Struct, frozen=True, tag_field="kind"):
    """On the wire each message is a JSON object whose ``kind`` names its type."""


class Wake(_Message, frozen=True, tag="wake"):
    """An event was queued for ``device``: its held poll answers. The event rides along so
    that poll can answer without reading the mailbox back."""

    device: str
    event_id: str
    event: dict[str, Any]
    at: float = 0.0
    """When it was queued (wall clock of the node that queued it), for the delivery-time
    histogram; 0 from a node of an older version during a rolling upgrade."""


class Kick(_Message, frozen=True, tag="kick"):
    """The account logged in on another device: ``device``'s poll answers ``login_otherwhere``."""

    device: str


class SessionEnded(_Message, frozen=True, tag="session_ended"):
    """A logout or a password change ended ``device``'s session."""

    device: str


class Replaced(_Message, frozen=True, tag="replaced"):
    """``device`` opened poll ``poll_id``: an older poll it holds on any node ends."""

    device: str
    poll_id: str


class SessionsChanged(_Message, frozen=True, tag="sessions_changed"):
    """A login, logout or reset changed ``account``'s sessions: cached views of them are stale."""

    account: str


class Resync(_Message, frozen=True, tag="resync"):
    """Never sent: a bus delivers it locally after an outage, when messages may have been
    missed, so every cache and held poll reads its source again."""


class CallRequest(_Message, frozen=True, tag="call_request"):
    """Node ``origin`` asks ``node``, which holds call ``sid``, to run operation ``op``."""

    node: str
    request_id: str
    origin: str
    op: str
    sid: str
    args: dict[str, Any]


class CallReply(_Message, frozen=True, tag="call_reply"):
    """``node``'s request ``request_id`` was answered: ``reply``, or the failure ``failed``
    with its ``extra`` fields."""

    node: str
    request_id: str
    reply: dict[str, Any] = {}
    failed: str | None = None
    extra: dict[str, Any] = {}


BusMessage = (
    Wake | Kick | SessionEnded | Replaced | SessionsChanged | Resync | CallRequest | CallReply
)
"""Everything the bus carries; a subscriber matches on the type and reads its routing key
(``device``, ``account`` or ``node``) from it."""

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
        from redis.exceptions import RedisError

        self._redis = redis.Redis.from_url(url)
        self._redis_error = RedisError
        self._channel = channel
        self._handlers: list[Handler] = []
        self._reader: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._decoder = msgspec.json.Decoder(BusMessage)
        self.bad_messages = 0

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    @contextlib.asynccontextmanager
    async def _reaching(self) -> AsyncIterator[None]:
        try:
            yield
        except self._redis_error as exc:
            raise BusUnavailable(str(exc)) from exc

    async def publish(self, message: BusMessage) -> None:
        async with self._reaching():
            await self._redis.publish(self._channel, msgspec.json.encode(message))

    def _held_key(self, device: str) -> str:
        return f"lwork:held:{device}"

    async def mark_held(self, device: str, poll_id: str, ttl_s: float) -> None:
        async with self._reaching():
            await self._redis.set(self._held_key(device), poll_id, px=int(ttl_s * 1000))

    async def unmark_held(self, device: str, poll_id: str) -> None:
        # Only our own mark: a newer poll on another node may have replaced it meanwhile.
        async with self._reaching():
            await self._redis.eval(_DELETE_IF_EQUAL, 1, self._held_key(device), poll_id)

    async def is_held(self, device: str) -> bool:
        async with self._reaching():
            return bool(await self._redis.exists(self._held_key(device)))

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="redis-bus")
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            # After a Redis outage, redis-py's pub/sub read can swallow the cancellation and
            # wait on for ever: the node's shutdown must not wait with it.
            await asyncio.wait({self._reader}, timeout=CLOSE_WAIT_S)
            if not self._reader.done():
                log.warning("redis bus reader did not stop in %.0f s; left behind", CLOSE_WAIT_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._redis.aclose(), CLOSE_WAIT_S)

    async def _read_forever(self) -> None:
        delay = 0.1
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    if self._subscribed.is_set():  # back after an outage: caches may be stale
                        self._deliver(Resync())
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
        except msgspec.DecodeError as exc:  # never fatal: the reader must keep serving the node
            self.bad_messages += 1
            log.warning("dropped a malformed bus message (%s): %r", exc, data[:200])
            return
        self._deliver(message)

    def _deliver(self, message: BusMessage) -> None:
        for handler in self._handlers:
            try:
                handler(message)
            except Exception:  # one subscriber's bug must not cost the others their messages
                log.exception("bus subscriber failed on %r", message)
