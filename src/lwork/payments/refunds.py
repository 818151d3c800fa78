"""Refunds: the provider gives the money back, then one transaction marks the order
``refunded`` and takes back from the balance what that money credited.

A refund the operator asks for is for the order's whole price or a part of it; either way the
order becomes ``refunded`` and the operator cannot refund it again (a second request answers
the first refund). A refund made at the provider (Alipay's or WeChat's merchant console, the
App Store) is announced by a notice and taken back when it comes, and there may be several
partial ones: each takes back its own share, once, however often it is announced. What is
taken back is the credit in proportion to the money, counted over all of the order's refunds
(three refunds of a third take back the whole credit). The balance never goes below zero: what
was already spent is recorded as the shortfall, on the refund row and as the ledger row's
``forgiven``.

A refund row is ``asked`` (written before the provider is asked), ``pending`` (the provider
accepted it and moves the money later: WeChat's PROCESSING; nothing taken back yet), ``done``
(taken back) or ``failed`` (refused, or closed by the provider: the credit stays).

Idempotent end to end: a retry after a crash or an unavailable provider asks again with the same
refund number (the provider's idempotency key), and the ledger row's ref is that number.

Nothing is lost when answers are: a refund still ``asked`` or ``pending`` some time later is
asked about (reconciliation) and decided from the provider's answer; a provider's notice of all
it refunded (Alipay's ``refund_fee``) that comes while one of ours is undecided is held in
``refund_holds`` and what it adds is taken back, once, in the transaction that decides ours.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lwork.billing import bucket_store
from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import coins_value
from lwork.payments.provider import (
    NotSupported,
    Provider,
    ProviderUnavailable,
    RefundNotice,
    RefundRequest,
)
from lwork.payments.settlement import OrderCounter
from lwork.storage.tables import balances, ledger, orders, refund_holds, refunds

log = logging.getLogger("lwork.payments")

# Asked by the reconciler every round on every worker: built once, as one built per call
# left a reference cycle each time (``bench.soak --census``).
_UNDECIDED = (
    select(refunds.c.payid, refunds.c.refund_no, orders.c.pay_type)
    .join(orders, orders.c.payid == refunds.c.payid)
    .where(refunds.c.state.in_(("asked", "pending")))
    .where(refunds.c.updated_at < bindparam("updated_before"))
    .order_by(refunds.c.updated_at)
    .limit(bindparam("limit", type_=Integer))
)


class RefundRefused(ValueError):
    """A refund that did not happen; ``reason`` is what the operator is answered."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class RefundUndecided(Exception):
    """A provider's notice of all it refunded so far (Alipay's ``refund_fee``) that tells of
    more than the refunds taken back while a refund of ours on the order has no answer yet:
    whether that one is in the sum cannot be told, so nothing is taken back now. The notice is
    held (``refund_holds``) and decided with ours; it is refused all the same, since the
    provider's next try may find ours answered, and changes nothing if it does not."""


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
        if result.state == "pending":
            return await self._pending(ask.refund_no, result.provider_refund_no, now)
        return await self._completed(payid, ask.refund_no, result.provider_refund_no, now)

    async def pending(self, updated_before: float, limit: int) -> list[tuple[str, str, str]]:
        """Refunds undecided since ``updated_before``: accepted and not finished (``pending``),
        or asked with no answer heard (``asked``: the answer was lost, or the server stopped
        before it came); (payid, refund number, pay type), oldest first."""
        params = {"updated_before": updated_before, "limit": limit}
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_UNDECIDED, params)).all()
        return [(r.payid, r.refund_no, r.pay_type) for r in rows]

    async def settle_pending(self, payid: str, refund_no: str, now: float) -> str:
        """Ask the provider how an undecided refund stands (its answer or notice may have been
        lost) and finish it from the answer: ``done``, ``failed``, or still ``pending``.

        An ``asked`` refund the provider knows nothing of never reached it (it is asked about
        only ``payments.reconcile_after_s`` after it was sent): failed, the credit stays. It is
        not sent again from here: the operator was told it did not go through, and money is
        given back only when an operator asks (a new request has a new number). A late
        success of it after all would still be taken back by its notice."""
        order = await self._order(payid)
        provider = self._providers.get(order.pay_type)
        if provider is None:
            return "pending"
        try:
            result = await provider.refund_state(payid, refund_no)
        except NotSupported:
            await self._touch(refund_no, now)  # not the oldest of the next round's batch
            return "pending"
        if result is None and await self._state(refund_no) == "asked":
            await self._failed(refund_no, f"{order.pay_type} knows no such refund", now)
            return "failed"
        if result is None or result.state == "pending":
            if result is None:  # accepted once, so it should know it: asked again later
                log.warning("refund %s of %s: %s knows no such refund", refund_no, payid,
                            order.pay_type)  # fmt: skip
            await self._touch(refund_no, now)  # asked again a round later, not at once
            return "pending"
        if result.state == "failed":
            await self._failed(refund_no, result.reason, now)
            return "failed"
        await self._completed(payid, refund_no, result.provider_refund_no, now)
        return "done"

    async def _order(self, payid: str) -> Any:
        async with self._engine.connect() as conn:
            return (await conn.execute(select(orders).where(orders.c.payid == payid))).one()

    async def _state(self, refund_no: str) -> str | None:
        async with self._engine.connect() as conn:
            query = select(refunds.c.state).where(refunds.c.refund_no == refund_no)
            state = await conn.scalar(query)
        return None if state is None else str(state)

    async def _touch(self, refund_no: str, now: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(refunds)
                .where(refunds.c.refund_no == refund_no,
                       refunds.c.state.in_(("asked", "pending")))
                .values(updated_at=now)
            )  # fmt: skip

    async def announced(self, pay_type: str, notice: RefundNotice, payid: str, reason: str,
                        now: float) -> Refunded | None:  # fmt: skip
        """``pay_type`` tells of a refund: one of ours it accepted before (completed now, or
        failed), or one made at the provider (recorded, and its share taken back). Once
        however often it is told; None when nothing was taken back."""
        names = {name for name in notice.refund_nos if name}
        done: Refunded | None = None
        released: list[Refunded] = []
        undecided: RefundUndecided | None = None
        async with self._engine.begin() as conn:
            order = await _locked_order(conn, payid)
            if order.pay_type != pay_type:  # a provider speaks only of the orders it took
                raise RefundRefused("unknown_payid", f"{payid} was not paid by {pay_type}")
            rows = await _refunds_of(conn, payid)
            known = [r for r in rows if r.refund_no in names or r.provider_refund_no in names]
            if not notice.succeeded:
                for row in known:
                    if row.state in ("asked", "pending"):
                        await _mark_failed(conn, row.refund_no, reason, now)
                        log.warning("refund %s of %s failed: %s", row.refund_no, payid, reason)
                released = await self._release(conn, order, now)
            elif known:
                row = known[0]
                if row.state == "done":
                    return _refunded(row)  # told again
                provider_no = notice.refund_nos[-1]
                done = await self._take_back(conn, order, row, provider_no, now)
                released = await self._release(conn, order, now)
            else:
                try:
                    new = await self._new_refund(conn, order, rows, notice, reason, now)
                except RefundUndecided as exc:
                    # Kept in this transaction, which must commit: raising through it would
                    # lose the notice if the provider never sent it again.
                    await _hold(conn, order, notice, reason, now)
                    undecided = exc
                    new = None
                if new is not None:
                    done = await self._take_back(conn, order, new, new.provider_refund_no, now)
        if undecided is not None:
            raise undecided
        self._after(order, [d for d in (done, *released) if d is not None])
        return done

    async def _new_refund(
        self, conn: AsyncConnection, order: Any, rows: list[Any], notice: RefundNotice,
        reason: str, now: float,
    ) -> Any | None:  # fmt: skip
        """The row of a refund made at the provider (state ``asked``, taken back next)."""
        if order.state not in ("paid", "refunded"):
            raise RefundRefused("not_paid", f"order {order.payid} is {order.state}")
        before = sum(r.money for r in rows if r.state == "done")
        money = notice.money_fen or order.money
        if notice.cumulative:
            money -= before
            if money <= 0:  # an older notice, or one telling of nothing new
                log.info("order %s: refunds up to %d fen were taken back already",
                         order.payid, before)  # fmt: skip
                return None
            unanswered = [r.refund_no for r in rows if r.state in ("asked", "pending")]
            if unanswered:
                # Taking back all that exceeds the refunds done would take ours again once it
                # is answered (if the sum holds it); leaving it out would lose this one (if not).
                raise RefundUndecided(
                    f"order {order.payid}: {notice.money_fen} fen refunded in all, "
                    f"{before} taken back, refund {', '.join(unanswered)} not answered yet"
                )
        if not 0 < before + money <= order.money:
            raise RefundRefused(
                "invalid_amount", f"{before} + {money} fen is more than the order's {order.money}"
            )
        return await _provider_refund(conn, order, rows, money, notice.refund_nos[-1], reason,
                                      now)  # fmt: skip

    async def _release(self, conn: AsyncConnection, order: Any, now: float) -> list[Refunded]:
        """In the transaction that decided a refund of ours (holding the order's lock): once
        none of ours is undecided, the notice held meanwhile takes back what it adds to the
        refunds done (nothing if ours was all of it), and is forgotten."""
        hold = (await conn.execute(
            select(refund_holds).where(refund_holds.c.payid == order.payid)
        )).one_or_none()  # fmt: skip
        if hold is None:
            return []
        rows = await _refunds_of(conn, order.payid)
        if any(r.state in ("asked", "pending") for r in rows):
            return []  # another of ours is still undecided: whether it is in the sum neither
        await conn.execute(delete(refund_holds).where(refund_holds.c.payid == order.payid))
        before = sum(r.money for r in rows if r.state == "done")
        money = min(int(hold.refunded), order.money) - before
        named = {r.refund_no for r in rows} | {r.provider_refund_no for r in rows}
        if money <= 0 or hold.provider_refund_no in named:
            log.info("order %s: the %d fen refunded in all that %s told of were taken back",
                     order.payid, hold.refunded, order.pay_type)  # fmt: skip
            return []
        row = await _provider_refund(conn, order, rows, money, hold.provider_refund_no,
                                     hold.reason, now)  # fmt: skip
        log.info("order %s: refund %s held while ours was undecided, taken back now",
                 order.payid, hold.provider_refund_no)  # fmt: skip
        return [await self._take_back(conn, order, row, row.provider_refund_no, now)]

    async def _ask(
        self, payid: str, money_fen: int | None, reason: str, now: float
    ) -> tuple[RefundRequest | Refunded, Any]:
        async with self._engine.begin() as conn:
            order = await _locked_order(conn, payid)
            rows = await _refunds_of(conn, payid)
            # Asked before without an answer, or accepted and not done yet: asked again under
            # the same number, which the provider answers with that refund as it stands.
            waiting = [r for r in rows if r.state in ("asked", "pending")]
            if waiting:
                row = waiting[0]
                # Not asked about by reconciliation while this request is on its way.
                await conn.execute(update(refunds).where(refunds.c.refund_no == row.refund_no)
                                   .values(updated_at=now))  # fmt: skip
                return _request(order, row.refund_no, row.money, row.reason), order
            done = [r for r in rows if r.state == "done"]
            if order.state == "refunded" and done:
                return _refunded(done[0]), order
            if order.state != "paid":
                raise RefundRefused("not_paid", f"order {payid} is {order.state}")
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
            payid = await conn.scalar(select(refunds.c.payid)
                                      .where(refunds.c.refund_no == refund_no))  # fmt: skip
            order = await _locked_order(conn, str(payid))
            await _mark_failed(conn, refund_no, why, now)
            released = await self._release(conn, order, now)
        self._after(order, released)

    async def _pending(self, refund_no: str, provider_refund_no: str, now: float) -> Refunded:
        """Accepted, the money moves later: nothing is taken back until the provider's notice
        of success (unless that notice came first and did it)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(refunds)
                .where(refunds.c.refund_no == refund_no, refunds.c.state.in_(("asked", "pending")))
                .values(state="pending", provider_refund_no=provider_refund_no or None,
                        updated_at=now)
            )  # fmt: skip
            row = await _refund_row(conn, refund_no)
        log.info("refund %s of %s accepted, waiting for the money to move", refund_no, row.payid)
        return _refunded(row)

    async def _completed(
        self, payid: str, refund_no: str, provider_refund_no: str, now: float
    ) -> Refunded:
        async with self._engine.begin() as conn:
            order = await _locked_order(conn, payid)
            row = await _refund_row(conn, refund_no)
            if row.state == "done":
                return _refunded(row)  # a racing retry, or the provider's notice, did it
            done = await self._take_back(conn, order, row, provider_refund_no, now)
            released = await self._release(conn, order, now)
        self._after(order, [done, *released])
        return done

    async def _take_back(
        self, conn: AsyncConnection, order: Any, row: Any, provider_refund_no: str, now: float
    ) -> Refunded:
        """Take back ``row``'s share of the order's credit, in the caller's transaction (which
        holds the order's lock): the order's credit in proportion to all its refunds done,
        less what the refunds before took."""
        before = int(await conn.scalar(
            select(func.coalesce(func.sum(refunds.c.money), 0))
            .where(refunds.c.payid == order.payid, refunds.c.state == "done")
        ) or 0)  # fmt: skip
        # Capped at the price: a refund of ours that failed and succeeded after all, once
        # the order was refunded anew, takes back nothing beyond the whole credit.
        before = min(before, order.money)
        after = min(before + int(row.money), order.money)

        def share(credit: int) -> int:
            return int(credit * after // order.money - credit * before // order.money)

        coins_due, minutes_due = share(order.coins), share(order.minutes)
        have = await self._ledger.locked_balance(conn, order.uuid, now)
        coins = min(coins_due, max(have.coins, 0))
        # Minutes come back from the package the order granted, not from others.
        credit = f"pay:{order.pay_type}:{order.trade_no}"
        minutes = await bucket_store.take_back(conn, order.uuid, credit, minutes_due)
        short = (coins_due - coins, minutes_due - minutes)
        await _debit(conn, order.uuid, f"refund:{row.refund_no}", coins, minutes, sum(short),
                     f"refund of order {order.payid}", now)  # fmt: skip
        await conn.execute(
            update(orders)
            .where(orders.c.payid == order.payid)
            .values(state="refunded", note=f"refunded {after} fen: {row.reason}"[:200])
        )
        provider_no = provider_refund_no or row.provider_refund_no
        values = {"state": "done", "provider_refund_no": provider_no,
                  "coins_taken": coins, "minutes_taken": minutes, "coins_short": short[0],
                  "minutes_short": short[1], "updated_at": now}  # fmt: skip
        await conn.execute(
            update(refunds).where(refunds.c.refund_no == row.refund_no).values(**values)
        )
        return Refunded(order.payid, row.refund_no, row.money, "done", coins, minutes, *short)

    def _after(self, order: Any, taken: list[Refunded]) -> None:
        """Count and log the refunds one transaction took back (committed); ``order`` as it
        was before it."""
        if taken and order.state == "paid":
            self._counted(order.pay_type, "refunded")
        for done in taken:
            if done.coins_short or done.minutes_short:
                log.warning("refund %s of %s: %s had spent %d coin cents and %d minutes of it",
                            done.refund_no, order.payid, order.uuid, done.coins_short,
                            done.minutes_short)  # fmt: skip

    async def of(self, payids: list[str]) -> dict[str, Refunded]:
        """Each order's latest refund that was taken back or is on its way."""
        if not payids:
            return {}
        query = (
            select(refunds)
            .where(refunds.c.payid.in_(payids), refunds.c.state.in_(("done", "pending")))
            .order_by(refunds.c.created_at, refunds.c.refund_no)
        )
        async with self._engine.connect() as conn:
            return {r.payid: _refunded(r) for r in (await conn.execute(query)).all()}


async def _locked_order(conn: AsyncConnection, payid: str) -> Any:
    """The order, locked to the end of the transaction: refunds and notices of one order
    queue here. The write comes first: on SQLite it takes the write lock."""
    touched = await conn.execute(
        update(orders).where(orders.c.payid == payid).values(updated_at=orders.c.updated_at)
    )
    if touched.rowcount == 0:
        raise RefundRefused("unknown_payid", payid)
    query = select(orders).where(orders.c.payid == payid).with_for_update()
    return (await conn.execute(query)).one()


async def _refunds_of(conn: AsyncConnection, payid: str) -> list[Any]:
    query = (
        select(refunds)
        .where(refunds.c.payid == payid)
        .order_by(refunds.c.created_at, refunds.c.refund_no)
    )
    return list((await conn.execute(query)).all())


async def _provider_refund(
    conn: AsyncConnection, order: Any, rows: list[Any], money: int, name: str, reason: str,
    now: float,
) -> Any:  # fmt: skip
    """The row of a refund made at the provider (state ``asked``, taken back next)."""
    refund_no = f"{order.payid}R{len(rows) + 1}"
    await conn.execute(refunds.insert().values(
        refund_no=refund_no, payid=order.payid, money=money, reason=reason[:200],
        state="asked", provider_refund_no=name[:128], coins_taken=0, minutes_taken=0,
        coins_short=0, minutes_short=0, created_at=now, updated_at=now))  # fmt: skip
    return await _refund_row(conn, refund_no)


async def _hold(
    conn: AsyncConnection, order: Any, notice: RefundNotice, reason: str, now: float
) -> None:
    """Keep a cumulative notice undecided for now (the caller holds the order's lock): the
    most refunded in all that the provider told of, and that notice's name."""
    refunded = notice.money_fen or order.money
    name = notice.refund_nos[-1][:128]
    query = select(refund_holds.c.refunded).where(refund_holds.c.payid == order.payid)
    held = await conn.scalar(query)
    if held is None:
        await conn.execute(refund_holds.insert().values(
            payid=order.payid, refunded=refunded, provider_refund_no=name, reason=reason[:200],
            created_at=now, updated_at=now))  # fmt: skip
    elif refunded > held:
        await conn.execute(update(refund_holds).where(refund_holds.c.payid == order.payid)
                           .values(refunded=refunded, provider_refund_no=name,
                                   updated_at=now))  # fmt: skip


async def _refund_row(conn: AsyncConnection, refund_no: str) -> Any:
    return (await conn.execute(select(refunds).where(refunds.c.refund_no == refund_no))).one()


async def _mark_failed(conn: AsyncConnection, refund_no: str, why: str, now: float) -> None:
    """Failed, unless something completed it first (the provider's notice of success)."""
    await conn.execute(
        update(refunds)
        .where(refunds.c.refund_no == refund_no, refunds.c.state.in_(("asked", "pending")))
        .values(state="failed", failure=why[:200], updated_at=now)
    )


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
