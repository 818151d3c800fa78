"""Argon2id password hashing off the event loop, with a bounded queue.

A hash costs tens of milliseconds of CPU by design. Hashing runs on a small thread pool; when more
checks are waiting than ``queue`` allows, callers get ``TooManyRequests`` at once instead of
piling up, so a login flood cannot starve the event loop or the rest of the thread pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lwork.errors import TooManyRequests

T = TypeVar("T")


class PasswordService:
    def __init__(
        self, *, time_cost: int, memory_kib: int, parallelism: int, workers: int, queue: int
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._slots = asyncio.Semaphore(workers + queue)

    @property
    def parameters(self) -> str:
        h = self._hasher
        return f"argon2id t={h.time_cost} m={h.memory_cost}KiB p={h.parallelism}"

    @property
    def saturated(self) -> bool:
        """Every hash thread is busy and the queue is full: a new check would be refused."""
        return self._slots.locked()

    async def hash(self, secret: str) -> str:
        return await self._run(self._hasher.hash, secret)

    async def verify(self, stored_hash: str, secret: str) -> bool:
        return await self._run(self._verify, stored_hash, secret)

    def _verify(self, stored_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        if self._slots.locked():
            raise TooManyRequests(1)
        async with self._slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
