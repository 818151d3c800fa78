"""The CDR webhook (CONTRACT §9, "lwork → BOSS"): every closed call record, POSTed to
``boss.cdr_webhook_url`` from a durable outbox.

The outbox row is written in the transaction that closes the record (``RecordStore``), so no
closed record is ever missing from it, a crash included. A round takes each account's waiting
records in the order they were closed and delivers them one after another, accounts side by
side: a record not yet acknowledged holds back its account's later ones, never another
account's. A row is claimed before it is sent (its ``next_at`` moved past the delivery's
timeout, only if no other sender moved it first), so two nodes do not send it at once; a
sender that dies mid-delivery leaves the claim to lapse and the record goes out again: at least
once, and the BOSS removes duplicates by the record's ``id``. Only a 2xx removes a row; anything
else waits ``cdr_webhook_backoff_s``, doubling up to ``cdr_webhook_backoff_max_s``, with jitter.
Deliveries run in this task alone, so a slow or dead BOSS delays nothing but its records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.boss.signing import sign
from lwork.calls.records import boss_view
from lwork.storage.tables import cdr_outbox, cdrs

log = logging.getLogger("lwork.boss.webhook")


class CdrWebhook:
    def __init__(
        self,
        engine: AsyncEngine,
        client: httpx.AsyncClient,
        url: str,
        key: tuple[str, str],
        zone: ZoneInfo,
        wall: Callable[[], float],
        *,
        timeout_s: float = 10.0,
        backoff_s: float = 1.0,
        backoff_max_s: float = 300.0,
        concurrency: int = 8,
        batch: int = 1000,
        idle_s: float = 1.0,
        depth_every_s: float = 1.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """``key``: the key id and secret that sign each request, as the BOSS signs its own."""
        self._engine = engine
        self._client = client
        self._url = url
        self._path = urlsplit(url).path or "/"
        self._key_id, self._secret = key
        self._zone = zone
        self._wall = wall
        self._timeout_s = timeout_s
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._slots = asyncio.Semaphore(concurrency)
        self._batch = batch
        self._idle_s = idle_s
        self._jitter = jitter
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Counting the whole outbox costs a scan: at most once a second, not once a round (a
        # round runs for every record closed).
        self._depth_every_s = depth_every_s
        self._depth_at = float("-inf")
        self.depth = 0
        """Records waiting in the outbox, counted at most every ``depth_every_s`` (a metric)."""
        self.oldest_s = 0.0
        """How long the oldest of them has waited, in seconds (a metric)."""
        self.delivered = 0
        self.failed = 0

    def wake(self) -> None:
        """A record was just closed: deliver it without waiting for the next idle round."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cdr-webhook")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                busy = await self.deliver_due()
            except Exception:  # the database away: the next round tries again
                log.exception("cdr webhook round failed")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_s)

    async def deliver_due(self) -> bool:
        """One round: each account's due records, in order; True if any was attempted.

        An account whose first waiting record is not due (waiting out a failure's backoff, or
        claimed by a sender mid-delivery) waits whole: only such a first record can be not due,
        since an account's records are delivered in order. Its later records are left out in
        the query itself, so a long backlog of held accounts never hides another account's."""
        now = self._wall()
        async with self._engine.connect() as conn:
            if now - self._depth_at >= self._depth_every_s:
                self._depth_at = now
                depth, oldest = (await conn.execute(
                    select(func.count(), func.min(cdr_outbox.c.created_at)))).one()  # fmt: skip
                self.depth, self.oldest_s = depth, (now - oldest if oldest is not None else 0.0)
            held = select(cdr_outbox.c.uuid).where(cdr_outbox.c.next_at > now)
            rows = (await conn.execute(
                select(cdr_outbox)
                .where(cdr_outbox.c.next_at <= now, cdr_outbox.c.uuid.not_in(held))
                .order_by(cdr_outbox.c.id)
                .limit(self._batch)
            )).all()  # fmt: skip
        queues: dict[str, list[Any]] = {}
        for row in rows:
            queues.setdefault(row.uuid, []).append(row)
        if not queues:
            return False
        await asyncio.gather(*(self._deliver_account(queue, now) for queue in queues.values()))
        return True

    async def _deliver_account(self, queue: list[Any], now: float) -> None:
        async with self._slots:
            for row in queue:
                if not await self._claim(row, now):
                    return  # another sender has it: the rest of the account waits behind it
                if not await self._deliver(row):
                    return

    async def _claim(self, row: Any, now: float) -> bool:
        async with self._engine.begin() as conn:
            claimed = await conn.execute(
                update(cdr_outbox)
                .where(cdr_outbox.c.id == row.id, cdr_outbox.c.next_at == row.next_at)
                .values(next_at=now + 2 * self._timeout_s)
            )
        return claimed.rowcount == 1

    async def _deliver(self, row: Any) -> bool:
        async with self._engine.connect() as conn:
            record = (await conn.execute(select(cdrs).where(cdrs.c.id == row.cdr_id))).first()
        if record is None:  # cannot be: written in one transaction; never block the account
            log.error("cdr webhook: record %s of the outbox is gone; dropped", row.cdr_id)
            await self._done(row.id)
            return True
        body = json.dumps(boss_view(dict(record._mapping), self._zone), ensure_ascii=False)
        error = await self._post(body.encode())
        if error is None:
            await self._done(row.id)
            self.delivered += 1
            return True
        self.failed += 1
        wait = min(self._backoff_max_s, self._backoff_s * 2 ** min(row.attempts, 30))
        wait *= 0.5 + self._jitter() / 2
        log.warning("cdr webhook: record %s not delivered (%s); again in %.1f s",
                    row.cdr_id, error, wait)  # fmt: skip
        async with self._engine.begin() as conn:
            await conn.execute(
                update(cdr_outbox)
                .where(cdr_outbox.c.id == row.id)
                .values(
                    attempts=row.attempts + 1, next_at=self._wall() + wait, last_error=error[:200]
                )  # fmt: skip
            )
        return False

    async def _post(self, body: bytes) -> str | None:
        """None when the BOSS acknowledged the record; else what went wrong."""
        timestamp = str(int(self._wall()))
        headers = {
            "Content-Type": "application/json",
            "X-Lwork-Key": self._key_id,
            "X-Lwork-Timestamp": timestamp,
            "X-Lwork-Signature": sign(self._secret, timestamp, "POST", self._path, body),
        }
        try:
            response = await self._client.post(
                self._url, content=body, headers=headers, timeout=self._timeout_s
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" or type(exc).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    async def _done(self, row_id: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(cdr_outbox).where(cdr_outbox.c.id == row_id))
