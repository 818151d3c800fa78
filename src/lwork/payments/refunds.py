"""Refunds: the provider gives the money back, then one transaction marks the order
``refunded`` and takes back from the balance what the order credited.

A refund is for the order's whole price or a part of it; either way the order becomes
``refunded`` and cannot be refunded again (a second partial refund is refused), and what is
taken back is the credit in proportion (a half refund takes back half the coins). The balance
never goes below zero: what was already spent is recorded as the shortfall, on the refund row
and as the ledger row's ``forgiven``.

Idempotent end to end: the refund row (state ``asked``) is written before the provider is
asked, so a retry after a crash or an unavailable provider asks again with the same refund
number (the provider's idempotency key), and the ledger row's ref is that number.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lwork.billing import bucket_store
from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import coins_value
from lwork.payments.provider import (
    NotSupported,
    Provider,
    ProviderUnavailable,
    RefundRequest,
    RefundResult,
)
from lwork.payments.settlement import OrderCounter
from lwork.storage.tables import balances, ledger, orders, refunds

log = logging.getLogger("lwork.payments")


class RefundRefused(ValueError):
    """A refund that did not happen; ``reason`` is what the operator is answered."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Refunded:
    payid: str
    refund_no: str
    money_fen: int
    state: str
    coins_taken: int
    minutes_taken: int
    coins_short: int
    minutes_short: int

    def answer(self) -> dict[str, Any]:
        return {
            "payid": self.payid, "refund_no": self.refund_no,
            "money": coins_value(self.money_fen), "refund_state": self.state,
            "coins_taken": coins_value(self.coins_taken), "minutes_taken": self.minutes_taken,
            "coins_short": coins_value(self.coins_short), "minutes_short": self.minutes_short,
        }  # fmt: skip


class Refunds:
    def __init__(
        self,
        engine: AsyncEngine,
        ledger_store: LedgerStore,
        providers: Mapping[str, Provider],
        counted: OrderCounter = lambda provider, state: None,
    ) -> None:
        """``counted`` counts each order entering ``refunded`` (a metric)."""
        self._engine = engine
        self._counted = counted
        self._ledger = ledger_store
        self._providers = providers

    async def refund(self, payid: str, money_fen: int | None, reason: str, now: float) -> Refunded:
        ask, order = await self._ask(payid, money_fen, reason[:200], now)
        if isinstance(ask, Refunded):
            return ask  # done before: a retry changes nothing
        provider = self._providers.get(order.pay_type)
        if provider is None:
            raise RefundRefused("pay_type_not_enabled", order.pay_type)
        try:
            result = await provider.refund(ask)
        except ProviderUnavailable as exc:
            log.warning("refund %s of %s: provider unavailable (%s); ask again", ask.refund_no,
                        payid, exc)  # fmt: skip
            raise RefundRefused("provider_unavailable", str(exc)) from exc
        except NotSupported as exc:
            await self._failed(ask.refund_no, str(exc), now)
            raise RefundRefused("refund_not_supported", str(exc)) from exc
        if result.state == "failed":
            await self._failed(ask.refund_no, result.reason, now)
            raise RefundRefused("refund_refused", result.reason)
        return await self._take_back(payid, ask.refund_no, result, now)

    async def announced(
        self, payid: str, money_fen: int | None, provider_refund_no: str, reason: str, now: float
    ) -> Refunded:
        """The provider gave money back on its own (the App Store refunds buyers; a merchant
        refunds from WeChat's platform): record the refund (``money_fen`` None: the whole
        price) and take back the credit, once however often it is announced."""
        ask, _ = await self._ask(payid, money_fen, reason[:200], now)
        if isinstance(ask, Refunded):
            return ask
        result = RefundResult(ask.refund_no, provider_refund_no, ask.money_fen, "done")
        return await self._take_back(payid, ask.refund_no, result, now)

    async def _ask(
        self, payid: str, money_fen: int | None, reason: str, now: float
    ) -> tuple[RefundRequest | Refunded, Any]:
        async with self._engine.begin() as conn:
            # Write first: the order row is locked (PostgreSQL) or the write lock taken (SQLite)
            # so two refunds of one order queue here.
            touched = await conn.execute(
                update(orders).where(orders.c.payid == payid).values(updated_at=now)
            )
            if touched.rowcount == 0:
                raise RefundRefused("unknown_payid", payid)
            order = (await conn.execute(
                select(orders).where(orders.c.payid == payid).with_for_update())).one()  # fmt: skip
            rows = (await conn.execute(
                select(refunds).where(refunds.c.payid == payid)
                .order_by(refunds.c.created_at))).all()  # fmt: skip
            done = [r for r in rows if r.state in ("done", "pending")]
            if order.state == "refunded" and done:
                return _refunded(done[0]), order
            if order.state != "paid":
                raise RefundRefused("not_paid", f"order {payid} is {order.state}")
            asked = [r for r in rows if r.state == "asked"]
            if asked:
                row = asked[0]
                return _request(order, row.refund_no, row.money, row.reason), order
            money = order.money if money_fen is None else money_fen
            if not 0 < money <= order.money:
                raise RefundRefused(
                    "invalid_amount", f"{money} fen is not within the order's {order.money}"
                )
            refund_no = f"{payid}R{len(rows) + 1}"
            await conn.execute(refunds.insert().values(
                refund_no=refund_no, payid=payid, money=money, reason=reason, state="asked",
                coins_taken=0, minutes_taken=0, coins_short=0, minutes_short=0,
                created_at=now, updated_at=now))  # fmt: skip
        return _request(order, refund_no, money, reason), order

    async def _failed(self, refund_no: str, why: str, now: float) -> None:
        log.warning("refund %s refused by the provider: %s", refund_no, why)
        async with self._engine.begin() as conn:
            await conn.execute(
                update(refunds)
                .where(refunds.c.refund_no == refund_no)
                .values(state="failed", failure=why[:200], updated_at=now)
            )

    async def _take_back(
        self, payid: str, refund_no: str, result: RefundResult, now: float
    ) -> Refunded:
        async with self._engine.begin() as conn:
            await conn.execute(update(orders).where(orders.c.payid == payid).values(updated_at=now))
            order = (await conn.execute(
                select(orders).where(orders.c.payid == payid).with_for_update())).one()  # fmt: skip
            row = (await conn.execute(
                select(refunds).where(refunds.c.refund_no == refund_no))).one()  # fmt: skip
            if order.state == "refunded":
                return _refunded(row)  # a racing retry took it back already
            coins_due = order.coins * row.money // order.money
            minutes_due = order.minutes * row.money // order.money
            have = await self._ledger.locked_balance(conn, order.uuid, now)
            coins = min(coins_due, max(have.coins, 0))
            # Minutes come back from the package the order granted, not from others.
            credit = f"pay:{order.pay_type}:{order.trade_no}"
            minutes = await bucket_store.take_back(conn, order.uuid, credit, minutes_due)
            short = (coins_due - coins, minutes_due - minutes)
            await _debit(conn, order.uuid, f"refund:{refund_no}", coins, minutes, sum(short),
                         f"refund of order {payid}", now)  # fmt: skip
            await conn.execute(
                update(orders)
                .where(orders.c.payid == payid)
                .values(state="refunded", note=f"refunded {row.money} fen: {row.reason}"[:200])
            )
            values = {"state": result.state, "provider_refund_no": result.provider_refund_no,
                      "coins_taken": coins, "minutes_taken": minutes, "coins_short": short[0],
                      "minutes_short": short[1], "updated_at": now}  # fmt: skip
            await conn.execute(
                update(refunds).where(refunds.c.refund_no == refund_no).values(**values)
            )
        self._counted(order.pay_type, "refunded")
        if any(short):
            log.warning("refund %s of %s: %s had spent %d coin cents and %d minutes of it",
                        refund_no, payid, order.uuid, *short)  # fmt: skip
        return Refunded(payid, refund_no, row.money, result.state, coins, minutes, *short)

    async def of(self, payids: list[str]) -> dict[str, Refunded]:
        """The refunds that happened, by order."""
        if not payids:
            return {}
        query = select(refunds).where(refunds.c.payid.in_(payids),
                                      refunds.c.state.in_(("done", "pending")))  # fmt: skip
        async with self._engine.connect() as conn:
            return {r.payid: _refunded(r) for r in (await conn.execute(query)).all()}


async def _debit(
    conn: AsyncConnection, uuid: str, ref: str, coins: int, minutes: int, short: int,
    note: str, now: float,
) -> None:  # fmt: skip
    await conn.execute(ledger.insert().values(
        uuid=uuid, ref=ref, kind="refund", coins=-coins, gift_coins=0, minutes=-minutes,
        forgiven=short, note=note[:200], created_at=now))  # fmt: skip
    await conn.execute(update(balances).where(balances.c.uuid == uuid).values(
        coins=balances.c.coins - coins, updated_at=now))  # fmt: skip


def _request(order: Any, refund_no: str, money: int, reason: str) -> RefundRequest:
    return RefundRequest(order.payid, order.trade_no or "", refund_no, money, order.money, reason)


def _refunded(row: Any) -> Refunded:
    return Refunded(row.payid, row.refund_no, row.money, row.state, row.coins_taken,
                    row.minutes_taken, row.coins_short, row.minutes_short)  # fmt: skip
