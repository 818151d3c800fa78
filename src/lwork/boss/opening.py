"""What a newly opened account starts with: ``boss.open_minutes`` package minutes for ``dth``.

Without them a new ``dth`` account has 0 minutes, and every call it makes fails
``balance_not_enough`` until the BOSS credits it."""

from __future__ import annotations

import secrets

from lwork.billing.rating import Balance
from lwork.billing.service import MINUTES_GROUPS, BillingService


class OpeningMinutes:
    def __init__(self, billing: BillingService, minutes: int) -> None:
        self._billing = billing
        self._minutes = minutes

    async def __call__(self, uuid: str, group: str) -> None:
        if self._minutes and group in MINUTES_GROUPS:
            # Each opening is its own credit (a number may be opened again after a mistake).
            ref = f"open:{uuid}:{secrets.token_hex(6)}"
            await self._billing.credit(uuid, ref, Balance(minutes=self._minutes), "opened")
