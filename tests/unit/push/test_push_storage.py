"""The push channel's storage pieces on real SQLite and PostgreSQL: mailbox bounds and upkeep,
deferred long-poll writes, the live-session cache."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.accounts.authorization import PollSeen
from lwork.accounts.live_sessions import LiveSessions
from lwork.accounts.poll_touches import PollTouches
from lwork.accounts.poll_writes_sqlite import SqlitePollWrites
from lwork.accounts.store import Account, AccountStore, Session
from lwork.push.mailbox import Mailbox, open_mailbox
from lwork.storage.engine import create_engine, migrate, sqlite_hot_path
from lwork.storage.tables import sessions

UUID = "8613800138000"


async def logged_in(store: AccountStore, device: str, token: str, now: float) -> None:
    if await store.get(UUID) is None:
        await store.create(Account(UUID, UUID, None, "x", "common", None), now)
    await store.start_session(Session(token, UUID, device, "android", now), now)


async def last_poll(engine: AsyncEngine, token: str) -> float | None:
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(sessions.c.last_poll).where(sessions.c.token_hash == token)
        )
    return float(found) if found is not None else None


@pytest.fixture
async def mailboxes(engine: AsyncEngine) -> AsyncIterator[Callable[[int], Mailbox]]:
    """The mailbox for this database (SQLite's own driver, or SQLAlchemy on PostgreSQL)."""
    opened: list[Mailbox] = []
    hot_path = sqlite_hot_path(engine)

    def make(size: int) -> Mailbox:
        opened.append(open_mailbox(engine, size, hot_path))
        return opened[-1]

    yield make
    for box in opened:
        await box.close()
    if hot_path is not None:
        await hot_path.close()


async def test_a_full_mailbox_keeps_the_newest_and_counts_the_rest(
    mailboxes: Callable[[int], Mailbox],
) -> None:
    box = mailboxes(3)
    for n in range(5):
        await box.put("u/A", {"n": n}, now=100.0, ttl_s=60)
    await box.put("u/B", {"n": 9}, now=100.0, ttl_s=60)
    assert [p.body["n"] for p in await box.pending("u/A", 101.0)] == [2, 3, 4]
    assert box.dropped == 2
    # the oldest are gone for good, not only hidden
    assert [p.body["n"] for p in await box.pending("u/A", 101.0)] == [2, 3, 4]
    assert box.dropped == 2
    assert [p.body["n"] for p in await box.pending("u/B", 101.0)] == [9]


async def test_upkeep_trims_unread_mailboxes_and_deletes_expired_events(
    mailboxes: Callable[[int], Mailbox],
) -> None:
    box = mailboxes(2)
    for n in range(4):
        await box.put("u/A", {"n": n}, now=100.0, ttl_s=60)
    await box.put("u/B", {"n": "short"}, now=100.0, ttl_s=1)
    await box.put("u/B", {"n": "long"}, now=100.0, ttl_s=60)
    await box.upkeep(now=130.0)
    assert box.dropped == 2
    assert [p.body["n"] for p in await box.pending("u/A", 0.0)] == [2, 3]
    # read with a clock before the expiry: the expired row itself was deleted
    assert [p.body["n"] for p in await box.pending("u/B", 0.0)] == ["long"]
    await box.upkeep(now=131.0)
    assert box.dropped == 2


IP = "198.51.100.20"


async def test_polls_of_a_known_session_are_written_together(engine: AsyncEngine) -> None:
    store = AccountStore(engine)
    await logged_in(store, "A", "tok-a", 100.0)
    hot_path = sqlite_hot_path(engine)  # as the server does: SQLite writes on its own thread
    writes = SqlitePollWrites(hot_path) if hot_path is not None else store
    touches = PollTouches(writes, window_s=180.0, prune_every_s=0.0)
    await touches.touch("tok-a", 100.0, IP)
    assert await last_poll(engine, "tok-a") == 100.0  # the first poll shows at once
    await touches.touch("tok-a", 130.0, IP)
    await touches.touch("tok-a", 150.0, IP)
    assert await last_poll(engine, "tok-a") == 100.0  # deferred
    await touches.flush(150.5)
    assert await last_poll(engine, "tok-a") == 150.0
    await touches.touch("tok-a", 320.0, IP)  # 170 s after the recorded poll: still deferred
    assert await last_poll(engine, "tok-a") == 150.0
    await touches.flush(320.5)
    assert await last_poll(engine, "tok-a") == 320.0
    # a poll about to leave the window is written at once
    await touches.touch("tok-a", 496.0, IP)
    assert await last_poll(engine, "tok-a") == 496.0
    # a session silent for a whole window is forgotten; its next poll is written at once
    await touches.flush(677.0)
    await touches.touch("tok-a", 678.0, IP)
    assert await last_poll(engine, "tok-a") == 678.0
    if hot_path is not None:
        await hot_path.close()


async def test_a_poll_from_another_network_is_written_at_once(engine: AsyncEngine) -> None:
    store = AccountStore(engine)
    await logged_in(store, "A", "tok-a", 100.0)
    touches = PollTouches(store, window_s=180.0)
    await touches.touch("tok-a", 100.0, "203.0.113.7")
    await touches.touch("tok-a", 110.0, "2001:db8:1:2::10")  # Wi-Fi to LTE: written now
    assert await store.poll_seen("tok-a") == PollSeen(110.0, "2001:db8:1:2::10")
    await touches.touch("tok-a", 120.0, "2001:db8:1:2::99")  # same /64: deferred
    assert await store.poll_seen("tok-a") == PollSeen(110.0, "2001:db8:1:2::10")
    await touches.flush(121.0)
    assert await store.poll_seen("tok-a") == PollSeen(120.0, "2001:db8:1:2::99")
    assert await store.poll_seen("no-such-token") == PollSeen(None, None)


async def test_live_sessions_are_cached_until_forgotten(engine: AsyncEngine) -> None:
    store = AccountStore(engine)
    clock = [0.0]
    live = LiveSessions(store, 3600.0, lambda: clock[0], lambda: 1000.0, max_age_s=60.0)
    assert await live.of(UUID) is None
    await logged_in(store, "A", "tok-a", 1000.0)
    assert await live.of(UUID) is None  # cached "no session"
    live.forget(UUID)
    found = await live.of(UUID)
    assert found is not None and found.device_id == "A"
    await logged_in(store, "B", "tok-b", 1000.0)
    clock[0] = 60.0  # the age bound ends an entry nothing announced a change for
    found = await live.of(UUID)
    assert found is not None and found.device_id == "B"


async def test_live_sessions_hold_only_the_accounts_seen_lately(engine: AsyncEngine) -> None:
    store = AccountStore(engine)
    clock = [0.0]
    live = LiveSessions(store, 3600.0, lambda: clock[0], lambda: 1000.0, max_age_s=60.0)
    for n in range(5):
        await live.of(f"8613900000{n:03d}")
    clock[0] = 30.0
    await live.of(UUID)
    await live.of("8613900000000")  # cached: not read again, its entry stays from t=0
    assert len(live) == 6
    clock[0] = 61.0  # the first five are past their age: dropped once anything is read
    await live.of("8613700000000")
    assert len(live) == 2
    clock[0] = 95.0
    await live.of("8613700000001")
    assert len(live) == 2  # UUID's entry (t=30) went too


async def test_accounts_read_together_are_not_all_read_again_together(
    engine: AsyncEngine,
) -> None:
    """Accounts first read in the same second are read again spread over the last quarter of
    the age bound, not all at once every ``max_age_s`` (a p99 wave every ten minutes)."""
    store = AccountStore(engine)
    clock = [0.0]
    draws = random.Random(7)
    live = LiveSessions(
        store, 3600.0, lambda: clock[0], lambda: 1000.0, max_age_s=60.0, draw=draws.random
    )
    accounts = [f"86139{n:08d}" for n in range(40)]
    for uuid in accounts:
        assert await live.of(uuid) is None  # cached: no session yet
    for uuid in accounts:  # logins nobody announces to this cache
        await store.create(Account(uuid, uuid, None, "x", "common", None), 1000.0)
        await store.start_session(Session(f"tok-{uuid}", uuid, "A", "android", 1000.0), 1000.0)

    async def read_again_at(now: float) -> int:
        """How many accounts' answers, asked at ``now``, were read again (show the login)."""
        clock[0] = now
        return sum(found is not None for found in [await live.of(uuid) for uuid in accounts])

    assert await read_again_at(44.0) == 0  # before the earliest age bound: all still cached
    assert 5 < await read_again_at(52.5) < 35  # the middle of the spread: some, not all
    assert await read_again_at(60.0) == len(accounts)  # the age bound: all


async def test_events_leave_by_id_and_with_their_call(mailboxes: Callable[[int], Mailbox]) -> None:
    box = mailboxes(10)
    first = await box.put("u/A", {"n": 1}, now=100.0, ttl_s=60)
    await box.put("u/A", {"n": 2}, now=100.0, ttl_s=60, call_id="call-1")
    await box.put("u/A", {"n": 3}, now=100.0, ttl_s=60, call_id="call-2")
    chosen = await box.put("u/A", {"n": 4}, now=100.0, ttl_s=60, event_id="e" * 32)
    assert chosen == "e" * 32
    await box.remove([first, chosen])
    await box.remove_call("call-1")
    await box.remove_call("no-such-call")
    assert [(p.body["n"]) for p in await box.pending("u/A", 101.0)] == [3]
    assert box.dropped == 0


async def test_the_sqlite_mailbox_checkpoints_only_when_asked(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}"
    engine = create_engine(db_url, 2)
    await migrate(engine)
    await engine.dispose()  # only the mailbox's own connection writes from here on
    path = db_url.split("///", 1)[1]
    hot_path = sqlite_hot_path(create_engine(db_url, 2))
    assert hot_path is not None
    box = open_mailbox(create_engine(db_url, 2), 10_000, hot_path)
    try:
        before = os.path.getsize(path)
        for n in range(1500):  # more commits than SQLite's default checkpoint interval
            await box.put(f"u/{n}", {"pad": "x" * 1000}, now=100.0, ttl_s=60)
        # and not one copied back into the database file on the event path
        assert os.path.getsize(path) == before
        assert os.path.getsize(path + "-wal") > 1500 * 1000
        await box.checkpoint()
        assert os.path.getsize(path) > before + 1500 * 1000
        assert len(await box.pending("u/7", 101.0)) == 1
    finally:
        await box.close()
        await hot_path.close()


async def test_the_postgresql_mailbox_outlives_its_connections(postgres_url: str) -> None:
    """Its statements run without a pre-ping (one round trip each), so a connection the server
    dropped (a restart) shows only when used: the operation is sent again on a new one."""
    import asyncpg

    engine = create_engine(postgres_url, 2)
    await migrate(engine)
    box = open_mailbox(engine, 10, None)
    try:
        first = await box.put("u/A", {"n": 1}, now=100.0, ttl_s=60)
        assert [p.event_id for p in await box.pending("u/A", 101.0)] == [first]
        admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert ended >= 1  # the mailbox's connection among them
        second = await box.put("u/A", {"n": 2}, now=100.0, ttl_s=60)
        assert [p.body["n"] for p in await box.pending("u/A", 101.0)] == [1, 2]
        await box.remove([first, second])
        assert await box.pending("u/A", 101.0) == []
    finally:
        await box.close()
        await engine.dispose()
