"""The audit trail: every BOSS action, from HTTP or the CLI, with who, what, when and result."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.storage.tables import boss_audit

# Never written to the trail: the activation password is a credential.
_SECRET_FIELDS = frozenset({"pwd"})


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    action: str
    account: str | None
    detail: dict[str, Any]
    result: str

    def line(self) -> str:
        when = dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat(timespec="seconds")
        detail = json.dumps(self.detail, ensure_ascii=False, sort_keys=True)
        return f"{when} {self.actor} {self.action} {self.account or '-'} {self.result} {detail}"


class AuditTrail:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(
        self, actor: str, action: str, fields: dict[str, Any], result: str, now: float
    ) -> None:
        detail = {k: v for k, v in fields.items() if k not in _SECRET_FIELDS and v is not None}
        account = fields.get("account")
        async with self._engine.begin() as conn:
            await conn.execute(boss_audit.insert().values(
                at=now, actor=actor[:64], action=action[:16],
                account=str(account)[:64] if account else None,
                detail=json.dumps(detail, ensure_ascii=False, default=str), result=result[:64],
            ))  # fmt: skip

    async def entries(self, account: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` entries (of ``account``'s if given), oldest first."""
        query = select(boss_audit).order_by(boss_audit.c.id.desc()).limit(limit)
        if account is not None:
            query = query.where(boss_audit.c.account == account)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            AuditEntry(row.at, row.actor, row.action, row.account, json.loads(row.detail),
                       row.result)
            for row in reversed(rows)
        ]  # fmt: skip
