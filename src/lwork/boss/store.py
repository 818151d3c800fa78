"""What the BOSS interface keeps in the database: signatures already accepted (so a replay is
refused even after a restart) and the answers to request ids (so a retried change is done once)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.storage.tables import boss_requests, boss_signatures


@dataclass(frozen=True, slots=True)
class Earlier:
    """A request id seen before: its first body's digest and, once done, its answer."""

    operation: str
    body_hash: str
    status_code: int | None
    answer: dict[str, Any] | None


class BossStore:
    def __init__(self, engine: AsyncEngine, prune_every_s: float = 30.0) -> None:
        self._engine = engine
        self._prune_every_s = prune_every_s
        self._pruned_at = 0.0

    async def first_use(self, signature: str, now: float, forget_before: float) -> bool:
        """Record ``signature``; False if it was recorded before (a replay). Signatures older
        than ``forget_before`` can no longer verify (their timestamp is stale): dropped now and
        then, not on every request (a left-over row only refuses a signature that is stale)."""
        try:
            async with self._engine.begin() as conn:
                if now - self._pruned_at >= self._prune_every_s:
                    self._pruned_at = now
                    await conn.execute(
                        delete(boss_signatures).where(boss_signatures.c.seen_at < forget_before)
                    )
                await conn.execute(
                    boss_signatures.insert().values(signature=signature, seen_at=now)
                )
        except IntegrityError:
            return False
        return True

    async def claim(
        self, request_id: str, key_id: str, operation: str, body_hash: str, now: float
    ) -> Earlier | None:
        """Take ``request_id`` for this request; None if it is new, else what was there."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(boss_requests.insert().values(
                    request_id=request_id, key_id=key_id, operation=operation,
                    body_hash=body_hash, created_at=now))  # fmt: skip
        except IntegrityError:
            pass
        else:
            return None
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(boss_requests).where(boss_requests.c.request_id == request_id)
                )
            ).first()
        if row is None:  # released by a failed first attempt meanwhile
            return await self.claim(request_id, key_id, operation, body_hash, now)
        answer = json.loads(row.answer) if row.answer is not None else None
        return Earlier(row.operation, row.body_hash, row.status_code, answer)

    async def answered(self, request_id: str, status_code: int, answer: dict[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(boss_requests)
                .where(boss_requests.c.request_id == request_id)
                .values(status_code=status_code, answer=json.dumps(answer))
            )

    async def release(self, request_id: str) -> None:
        """The first attempt broke before changing anything it could answer: a retry may run."""
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(boss_requests).where(boss_requests.c.request_id == request_id)
            )
