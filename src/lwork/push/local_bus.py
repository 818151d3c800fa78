"""The bus between the API worker processes of one machine (``http.workers`` > 1 with an empty
``bus.url``): no server to install, so the embedded default keeps working with several workers.

The supervising parent hosts a ``Hub``; each worker holds one end of a Unix socket pair whose
other end the hub reads (``LocalBus``). A socket pair rather than a socket file: nothing to name,
clean up or protect with file modes, and only the parent's own children can ever reach the hub.

On the socket each frame is a 4-byte big-endian length and a msgpack ``HubFrame``. The hub fans
every ``Publish`` out to every worker, the publisher included (as Redis pub/sub does, so a
worker's own messages arrive the same way as the others'), passing the message bytes through
without decoding them. It also keeps the held-poll marks that ``RedisBus`` keeps in short-lived
keys, and forgets a worker's marks when that worker goes (its polls went with it). It passes a
worker's ``Counts`` (what its shared rate limits admitted, ``lwork.http.shared_limits``) on to
the other workers. The hub serves the workers whatever ``bus.url`` says: with Redis as the bus,
the socket carries the counts only.

A worker whose hub goes away (the parent died) is told through ``on_lost``: it stops, rather
than serve on without the events of its siblings.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated

import msgspec

from lwork.push.bus import BusMessage, BusUnavailable, Handler

log = logging.getLogger("lwork.bus")

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 20
"""Largest frame either side accepts: a bus message carries one event (a few hundred bytes);
a length beyond this can only be a corrupt stream, which cannot be resynchronised."""
ASK_TIMEOUT_S = 2.0
"""How long ``is_held`` waits for the hub before treating the bus as unavailable."""
MAX_BACKLOG = 64 << 20
"""Bytes the hub may have queued toward one worker; beyond it that worker is not reading (hung)
and is cut off, which makes it stop and be restarted, instead of growing the parent for ever."""
SWEEP_EVERY_S = 60.0


class FrameError(ValueError):
    """The byte stream cannot be cut into frames any more (a length beyond ``MAX_FRAME``)."""


class FrameReader:
    """Bytes in as they arrive, whole frame payloads out (sans-IO)."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._max = max_frame

    @property
    def pending(self) -> int:
        """Bytes of a frame not complete yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        buffer, offset = self._buffer, 0
        while len(buffer) - offset >= HEADER.size:
            (length,) = HEADER.unpack_from(buffer, offset)
            if length > self._max:
                raise FrameError(f"a frame of {length} bytes (at most {self._max})")
            end = offset + HEADER.size + length
            if len(buffer) < end:
                break
            frames.append(bytes(buffer[offset + HEADER.size : end]))
            offset = end
        del buffer[:offset]
        return frames


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise FrameError(f"a frame of {len(payload)} bytes (at most {MAX_FRAME})")
    return HEADER.pack(len(payload)) + payload


class _Frame(msgspec.Struct, frozen=True, array_like=True, tag=True):
    pass


class Publish(_Frame, frozen=True, tag="p"):
    """Worker to hub: deliver ``message`` (a msgpack ``BusMessage``) to every worker; hub to
    worker: one to deliver."""

    message: bytes


class Mark(_Frame, frozen=True, tag="m"):
    device: str
    poll_id: str
    ttl_s: float


class Unmark(_Frame, frozen=True, tag="u"):
    device: str
    poll_id: str


class Ask(_Frame, frozen=True, tag="a"):
    """Is ``device``'s poll held on any worker?"""

    request_id: int
    device: str


class Answer(_Frame, frozen=True, tag="h"):
    request_id: int
    held: bool


Count = Annotated[int, msgspec.Meta(ge=1, le=1 << 31)]


class Counts(_Frame, frozen=True, tag="c"):
    """Worker to hub, hub to the other workers: events the shared limit ``limiter`` admitted
    for each key in its window number ``window``, since the worker's last report."""

    limiter: str
    window: int
    counts: dict[str, Count]


HubFrame = Publish | Mark | Unmark | Ask | Answer | Counts


class To(Enum):
    """Whom the hub sends a reply to."""

    ALL = 1
    SENDER = 2
    OTHERS = 3


_frame_decoder = msgspec.msgpack.Decoder(HubFrame)
_frame_encoder = msgspec.msgpack.Encoder()


def encode_frame(message: HubFrame) -> bytes:
    return frame(_frame_encoder.encode(message))


@dataclass
class _Mark:
    poll_id: str
    expires: float
    owner: int


@dataclass
class HubState:
    """What the hub knows, and what each frame makes it send (sans-IO: time passed in)."""

    marks: dict[str, _Mark] = field(default_factory=dict)
    bad_frames: int = 0

    def handle(self, owner: int, payload: bytes, now: float) -> tuple[To, bytes] | None:
        """The reply to one frame from worker ``owner``: (to whom, framed bytes), or None.
        A frame that does not decode is counted and dropped; the stream goes on."""
        try:
            message = _frame_decoder.decode(payload)
        except msgspec.DecodeError:
            self.bad_frames += 1
            log.warning("hub dropped a malformed frame from worker %d: %r", owner, payload[:100])
            return None
        match message:
            case Publish():
                return To.ALL, frame(payload)
            case Counts():
                return To.OTHERS, frame(payload)
            case Mark(device=device, poll_id=poll_id, ttl_s=ttl_s):
                self.marks[device] = _Mark(poll_id, now + ttl_s, owner)
            case Unmark(device=device, poll_id=poll_id):
                mark = self.marks.get(device)
                if mark is not None and mark.poll_id == poll_id:
                    del self.marks[device]
            case Ask(request_id=request_id, device=device):
                return To.SENDER, encode_frame(Answer(request_id, self.is_held(device, now)))
            case Answer():
                self.bad_frames += 1  # only the hub answers
        return None

    def is_held(self, device: str, now: float) -> bool:
        mark = self.marks.get(device)
        if mark is None:
            return False
        if mark.expires <= now:
            del self.marks[device]
            return False
        return True

    def forget(self, owner: int) -> None:
        """Worker ``owner`` is gone, and the polls it held with it."""
        self.marks = {device: m for device, m in self.marks.items() if m.owner != owner}

    def sweep(self, now: float) -> None:
        self.marks = {device: m for device, m in self.marks.items() if m.expires > now}


class Hub:
    """The parent's side: one reader per attached worker socket, and the fan-out."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.state = HubState()
        self._monotonic = monotonic
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def attached(self) -> int:
        return len(self._writers)

    def attach(self, sock: socket.socket) -> None:
        """Serve the hub's end of a worker's socket pair until it closes."""
        task = asyncio.create_task(self._serve(next(self._ids), sock), name="bus-hub")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="bus-hub-sweep")

    async def close(self) -> None:
        for task in [*self._tasks, *([self._sweeper] if self._sweeper else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            self.state.sweep(self._monotonic())

    async def _serve(self, owner: int, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=sock)
        self._writers[owner] = writer
        frames = FrameReader()
        try:
            while data := await reader.read(1 << 16):
                for payload in frames.feed(data):
                    reply = self.state.handle(owner, payload, self._monotonic())
                    if reply is not None:
                        self._send(reply[1], reply[0], owner)
        except FrameError as exc:  # a corrupt stream: cut it; the worker stops and restarts
            log.error(
                "hub: worker connection %d sent a corrupt stream (%s); closing it", owner, exc
            )
        except (ConnectionError, OSError):
            pass  # the worker died, perhaps mid-frame: what it half sent is dropped
        finally:
            self._writers.pop(owner, None)
            self.state.forget(owner)
            writer.close()

    def _send(self, data: bytes, to: To, sender: int) -> None:
        if to is To.SENDER:
            targets = [(sender, self._writers[sender])]
        else:
            targets = [(o, w) for o, w in self._writers.items() if to is To.ALL or o != sender]
        for owner, writer in targets:
            if writer.transport.get_write_buffer_size() > MAX_BACKLOG:
                log.error("hub: worker connection %d reads nothing; cutting it off", owner)
                writer.transport.abort()
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                writer.write(data)


class LocalBus:
    """A worker's side of the hub: the ``Bus`` interface over its socket."""

    def __init__(self, sock: socket.socket, on_lost: Callable[[], None]) -> None:
        self._sock = sock
        self._on_lost = on_lost
        self._handlers: list[Handler] = []
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.Task[None] | None = None
        self._asks: dict[int, asyncio.Future[bool]] = {}
        self._ids = itertools.count()
        self._decoder = msgspec.msgpack.Decoder(BusMessage)
        self._encoder = msgspec.msgpack.Encoder()
        self._closing = False
        self.bad_messages = 0
        self.on_counts: Callable[[Counts], None] | None = None
        """Given the other workers' ``Counts`` (the shared rate limits)."""

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def _send(self, message: HubFrame) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise BusUnavailable("the workers' hub is gone")
        writer.write(encode_frame(message))

    async def publish(self, message: BusMessage) -> None:
        self._send(Publish(self._encoder.encode(message)))

    def send_counts(self, counts: Counts) -> None:
        self._send(counts)

    async def mark_held(self, device: str, poll_id: str, ttl_s: float) -> None:
        self._send(Mark(device, poll_id, ttl_s))

    async def unmark_held(self, device: str, poll_id: str) -> None:
        self._send(Unmark(device, poll_id))

    async def is_held(self, device: str) -> bool:
        request_id = next(self._ids)
        answer = asyncio.get_running_loop().create_future()
        self._asks[request_id] = answer
        try:
            self._send(Ask(request_id, device))
            return await asyncio.wait_for(answer, ASK_TIMEOUT_S)
        except TimeoutError as exc:
            raise BusUnavailable("the workers' hub did not answer") from exc
        finally:
            self._asks.pop(request_id, None)

    async def start(self) -> None:
        """Connect (once: as the bus and as the shared limits' link, it is started twice)."""
        if self._writer is not None:
            return
        reader, self._writer = await asyncio.open_connection(sock=self._sock)
        self._reader = asyncio.create_task(self._read_forever(reader), name="local-bus")

    async def close(self) -> None:
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._writer is not None:
            self._writer.close()

    async def _read_forever(self, reader: asyncio.StreamReader) -> None:
        frames = FrameReader()
        try:
            while data := await reader.read(1 << 16):
                for payload in frames.feed(data):
                    self._dispatch(payload)
        except (FrameError, ConnectionError, OSError) as exc:
            log.error("local bus: the hub's stream broke: %s", exc)
        if self._writer is not None:
            self._writer.close()  # what is sent from now on fails as BusUnavailable
        for answer in self._asks.values():
            if not answer.done():
                answer.set_exception(BusUnavailable("the workers' hub is gone"))
        if not self._closing:
            log.error("local bus: the workers' hub is gone (the supervising parent died?)")
            self._on_lost()

    def _dispatch(self, payload: bytes) -> None:
        try:
            message = _frame_decoder.decode(payload)
            if isinstance(message, Answer):
                answer = self._asks.get(message.request_id)
                if answer is not None and not answer.done():
                    answer.set_result(message.held)
                return
            if isinstance(message, Counts):
                self._counted(message)
                return
            if not isinstance(message, Publish):
                raise msgspec.DecodeError(f"unexpected {type(message).__name__} from the hub")
            delivered = self._decoder.decode(message.message)
        except msgspec.DecodeError as exc:  # never fatal: the reader must keep serving
            self.bad_messages += 1
            log.warning("dropped a malformed bus message (%s): %r", exc, payload[:200])
            return
        for handler in self._handlers:
            try:
                handler(delivered)
            except Exception:  # one subscriber's bug must not cost the others their messages
                log.exception("bus subscriber failed on %r", delivered)

    def _counted(self, counts: Counts) -> None:
        if self.on_counts is None:
            return
        try:
            self.on_counts(counts)
        except Exception:  # the reader must keep serving the bus
            log.exception("shared limits failed on %r", counts)
