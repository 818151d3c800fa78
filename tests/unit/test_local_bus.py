"""The local bus of ``http.workers``: its framing, the hub's state, and hub and workers talking
over real Unix socket pairs (what each worker process holds one end of)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwork.push.bus import BusMessage, BusUnavailable, Kick, SessionsChanged, Wake
from lwork.push.local_bus import (
    HEADER,
    MAX_FRAME,
    Counts,
    FrameError,
    FrameReader,
    Hub,
    HubState,
    LocalBus,
    Mark,
    Publish,
    To,
    encode_frame,
    frame,
)


@given(
    st.lists(st.binary(max_size=300), max_size=20),
    st.lists(st.integers(min_value=1, max_value=50), min_size=1),
)
def test_frames_come_out_whole_however_the_stream_is_cut(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(frame(p) for p in payloads)
    reader, out, at, i = FrameReader(), [], 0, 0
    while at < len(stream):
        step = cuts[i % len(cuts)]
        out += reader.feed(stream[at : at + step])
        at, i = at + step, i + 1
    assert out == payloads
    assert reader.pending == 0


@given(st.binary(max_size=2000))
def test_any_bytes_give_frames_or_a_frame_error_never_anything_else(data: bytes) -> None:
    reader = FrameReader(max_frame=1000)
    try:
        for payload in reader.feed(data):
            assert len(payload) <= 1000
    except FrameError:
        pass


def test_a_length_beyond_the_limit_is_a_frame_error() -> None:
    with pytest.raises(FrameError):
        FrameReader().feed(HEADER.pack(MAX_FRAME + 1))
    with pytest.raises(FrameError):
        frame(b"x" * (MAX_FRAME + 1))


@given(st.binary(max_size=500))
def test_the_hub_state_takes_any_payload_without_raising(payload: bytes) -> None:
    state = HubState()
    reply = state.handle(0, payload, now=0.0)
    assert reply is None or isinstance(reply[1], bytes)


any_int = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what msgpack can carry
counts_like = st.tuples(
    st.just("c"),
    st.one_of(st.text(max_size=20), any_int, st.none()),
    st.one_of(any_int, st.text(max_size=5)),
    st.dictionaries(
        st.one_of(st.text(max_size=10), any_int),
        st.one_of(any_int, st.floats(), st.text()),
        max_size=5,
    ),
)


@given(counts_like)
def test_the_hub_passes_on_counts_only_when_they_are_whole(fields: tuple[object, ...]) -> None:
    """Anything shaped like a ``Counts`` frame: passed on to the other workers as it came if it
    decodes as one (every count a positive integer), else counted and dropped."""
    state = HubState()
    payload = msgspec.msgpack.encode(list(fields))
    reply = state.handle(0, payload, now=0.0)
    try:
        counts = msgspec.msgpack.decode(payload, type=Counts)
    except msgspec.ValidationError:
        assert reply is None and state.bad_frames == 1
    else:
        assert reply == (To.OTHERS, frame(payload))
        assert all(1 <= n <= 2**31 for n in counts.counts.values())


def test_marks_expire_are_unmarked_only_by_their_poll_and_go_with_their_worker() -> None:
    state = HubState()
    for owner, device in ((0, "a"), (1, "b")):
        payload = encode_frame(Mark(device, "p1", 10.0))[HEADER.size :]
        assert state.handle(owner, payload, now=0.0) is None
    assert state.is_held("a", 5.0) and state.is_held("b", 5.0)
    state.handle(0, encode_frame(msgspec.msgpack.decode(b"\x93\xa1u\xa1a\xa2p2"))[4:], 5.0)
    assert state.is_held("a", 5.0)  # another poll's unmark leaves it
    state.forget(1)
    assert not state.is_held("b", 5.0)
    assert not state.is_held("a", 10.0)  # expired


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    hub = Hub()
    yield hub
    await hub.close()


class Worker:
    """A worker's side as a worker process has it: a LocalBus over one end of a socket pair."""

    def __init__(self, hub: Hub) -> None:
        ours, self.theirs = socket.socketpair()
        hub.attach(ours)
        self.lost = asyncio.Event()
        self.bus = LocalBus(self.theirs, on_lost=self.lost.set)
        self.got: list[BusMessage] = []
        self.bus.subscribe(self.got.append)


async def until(condition: object, timeout: float = 2.0) -> None:
    async def wait() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)

    await asyncio.wait_for(wait(), timeout)


async def test_a_message_reaches_every_worker_and_presence_is_shared(hub: Hub) -> None:
    one, two = Worker(hub), Worker(hub)
    await one.bus.start()
    await two.bus.start()
    wake = Wake("dev", "e1", {"event": "x", "n": [1, 2]}, 1.5)
    await one.bus.publish(wake)
    await until(lambda: one.got and two.got)
    assert one.got == two.got == [wake]

    await one.bus.mark_held("dev", "poll-1", 30)
    assert await two.bus.is_held("dev")
    await two.bus.unmark_held("dev", "poll-other")
    assert await two.bus.is_held("dev")
    await one.bus.unmark_held("dev", "poll-1")
    assert not await two.bus.is_held("dev")
    await one.bus.close()
    await two.bus.close()
    assert not one.lost.is_set()


async def test_the_hub_survives_a_worker_dying_mid_frame_and_forgets_its_polls(hub: Hub) -> None:
    one, two = Worker(hub), Worker(hub)
    await one.bus.start()
    await two.bus.start()
    await two.bus.mark_held("dev-2", "p", 30)
    assert await one.bus.is_held("dev-2")
    # worker two dies after writing half a frame
    whole = encode_frame(Publish(msgspec.msgpack.encode(Kick("dev-1"))))
    await two.bus.close()
    two.theirs.close()
    await until(lambda: hub.attached == 1)
    assert not await one.bus.is_held("dev-2")

    three = Worker(hub)
    raw = three.theirs
    raw.sendall(whole[:5])
    raw.close()
    await until(lambda: hub.attached == 1)
    await one.bus.publish(SessionsChanged("acc"))
    await until(lambda: one.got)
    assert one.got == [SessionsChanged("acc")]
    await one.bus.close()


async def test_malformed_frames_are_dropped_and_a_corrupt_stream_is_cut(hub: Hub) -> None:
    one, rogue = Worker(hub), Worker(hub)
    await one.bus.start()
    rogue.theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    # a frame that is not a hub frame, then one whose message is not a bus message
    await loop.sock_sendall(rogue.theirs, frame(b"\xc1garbage"))
    await loop.sock_sendall(rogue.theirs, encode_frame(Publish(b"\x81\xa4kind\xa4nope")))
    await loop.sock_sendall(rogue.theirs, encode_frame(Publish(msgspec.msgpack.encode(Kick("d")))))
    await until(lambda: one.got)
    assert one.got == [Kick("d")]  # the good one after the bad ones
    assert hub.state.bad_frames == 1 and one.bus.bad_messages == 1

    await loop.sock_sendall(rogue.theirs, HEADER.pack(MAX_FRAME + 1))
    await until(lambda: hub.attached == 1)  # the corrupt stream is closed, the rest go on
    while await asyncio.wait_for(loop.sock_recv(rogue.theirs, 1 << 16), 2):
        pass  # what was fanned out to it before, then the end: the hub closed it
    await one.bus.publish(Kick("e"))
    await until(lambda: len(one.got) == 2)
    await one.bus.close()


async def test_counts_reach_the_other_workers_only_and_bad_ones_are_dropped(hub: Hub) -> None:
    one, two, three = Worker(hub), Worker(hub), Worker(hub)
    got: dict[str, list[Counts]] = {"one": [], "two": [], "three": []}
    for name, worker in (("one", one), ("two", two), ("three", three)):
        worker.bus.on_counts = got[name].append
        await worker.bus.start()
    sent = Counts("http.ip", 100, {"198.51.100.7": 3})
    one.bus.send_counts(sent)
    await until(lambda: got["two"] and got["three"])
    await asyncio.sleep(0.05)
    assert got == {"one": [], "two": [sent], "three": [sent]}
    # a negative count, and a subscriber that raises: dropped, the streams go on
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(three.theirs, frame(msgspec.msgpack.encode(["c", "x", 1, {"k": -5}])))

    def broken(counts: Counts) -> None:
        raise RuntimeError("a bug")

    two.bus.on_counts = broken
    one.bus.send_counts(sent)
    await until(lambda: len(got["three"]) == 2)
    assert hub.state.bad_frames == 1 and hub.attached == 3
    await one.bus.publish(Kick("d"))
    await until(lambda: two.got == [Kick("d")])
    for worker in (one, two, three):
        await worker.bus.close()
    assert not two.lost.is_set()


async def test_a_worker_whose_hub_is_gone_is_told_and_its_bus_refuses(hub: Hub) -> None:
    one = Worker(hub)
    await one.bus.start()
    await hub.close()
    await asyncio.wait_for(one.lost.wait(), 2)
    await asyncio.sleep(0.01)
    with pytest.raises(BusUnavailable):
        await one.bus.publish(Kick("d"))
    await one.bus.close()


async def test_is_held_without_an_answer_is_bus_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours, theirs = socket.socketpair()  # a hub that never answers: nobody reads ``ours``
    monkeypatch.setattr("lwork.push.local_bus.ASK_TIMEOUT_S", 0.1)
    bus = LocalBus(theirs, on_lost=lambda: None)
    await bus.start()
    with pytest.raises(BusUnavailable):
        await bus.is_held("dev")
    await bus.close()
    ours.close()
