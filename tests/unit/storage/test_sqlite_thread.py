"""The SQLite hot path's thread answers each caller on its own event loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lwork.storage.sqlite_thread import SqliteThread


def _answer(value: int) -> int:
    return value * 2


def test_a_loop_that_closed_does_not_stop_the_thread_serving_the_next(tmp_path: Path) -> None:
    thread = SqliteThread(str(tmp_path / "lwork.db"))

    async def first() -> int:
        return await thread.call(_answer, 1)

    async def abandoned() -> None:
        # a request still running when its loop closes (a test's or a shutdown's loop): its
        # answer has nowhere to go
        await asyncio.wait_for(thread.call(time.sleep, 0.2), 0.01)

    async def later() -> int:
        # a request from another loop after that: answered, not left hanging
        return await asyncio.wait_for(thread.call(_answer, 21), 5.0)

    assert asyncio.run(first()) == 2
    try:
        asyncio.run(abandoned())
    except TimeoutError:
        pass
    assert asyncio.run(later()) == 42
    asyncio.run(thread.close())
