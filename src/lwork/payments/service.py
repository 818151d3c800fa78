"""Payments as the app and the providers see them: open an order, list what was paid, settle
a notification."""

from __future__ import annotations

import datetime as dt
import logging
import uuid as uuid_module
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from lwork.billing.rating import coins_value
from lwork.errors import Failed
from lwork.payments.apple import AppleProvider
from lwork.payments.apple_purchases import ApplePurchases
from lwork.payments.orders import OrderStore, Recharge, payid_of_token
from lwork.payments.products import Catalogue, Product
from lwork.payments.provider import (
    Ack,
    NewOrder,
    NotVerified,
    Provider,
    ProviderUnavailable,
    RefundNotice,
)
from lwork.payments.reconcile import Reconciler
from lwork.payments.refunds import Refunded, RefundRefused, Refunds, RefundUndecided
from lwork.payments.settlement import Settled

log = logging.getLogger("lwork.payments")

PAY_TYPES = ("alipay", "wechat", "apple", "test")
STATES = ("created", "paid", "closed", "refunded", "flagged")
ORDERS_LIMIT = 10_000
"""Orders one listing answers at most (``truncated`` says there were more)."""


class PaymentService:
    def __init__(
        self,
        orders: OrderStore,
        catalogue: Catalogue,
        providers: Mapping[str, Provider],
        order_ttl_s: float,
        timezone: str,
        wall: Callable[[], float],
        refunds: Refunds,
        reconciler: Reconciler,
    ) -> None:
        self._orders = orders
        self.refunds = refunds
        self.reconciler = reconciler
        self._catalogue = catalogue
        self.providers = dict(providers)
        """The enabled providers by pay type."""
        self._ttl_s = order_ttl_s
        self._zone = ZoneInfo(timezone)
        self._wall = wall
        apple = self.providers.get("apple")
        self._apple = (
            ApplePurchases(apple, orders, catalogue, wall)
            if isinstance(apple, AppleProvider) else None
        )  # fmt: skip

    def product(
        self, group: str, product_id: str | None, money: Decimal | None, coins: Decimal | None
    ) -> Product:
        product = self._catalogue.find(group, product_id, money, coins)
        if product is None:
            raise Failed("error_params")
        return product

    async def open_order(
        self, uuid: str, uuid_raw: str, product: Product, pay_type: str
    ) -> dict[str, Any]:
        """A new order: its payid and what the app's payment SDK needs."""
        provider = self.providers.get(pay_type)
        if provider is None:
            raise Failed("pay_type_not_enabled")
        # An App Store order's payid is the appAccountToken the app buys with, in other letters:
        # the transaction then names the order it was bought for.
        payid = payid_of_token(uuid_module.uuid4()) if pay_type == "apple" else None
        payid, expires_at = await self._orders.create(
            uuid, uuid_raw, product, pay_type, self._wall(), self._ttl_s, payid
        )
        try:
            extra = await provider.create(
                NewOrder(payid, product.money_fen, product.id, expires_at)
            )
        except ProviderUnavailable as exc:
            # Expected now and then (the provider is down or slow): no traceback, and the app
            # gets the contract's catch-all, as for any failure it cannot fix by itself.
            await self._orders.forget(payid)
            log.warning("order %s not opened: %s is unavailable: %s", payid, pay_type, exc)
            raise Failed("service_not_available") from exc
        except Exception:
            await self._orders.forget(payid)
            raise
        log.info("order %s opened: %s buys %s by %s", payid, uuid, product.id, pay_type)
        return {"payid": payid, **extra}

    async def recharges(self, uuid: str) -> list[dict[str, Any]]:
        """``get_recharges``' list (CONTRACT §8): paid orders, oldest first, in local time."""
        return [self._recharge(paid) for paid in await self._orders.recharges(uuid)]

    def _recharge(self, paid: Recharge) -> dict[str, Any]:
        at = dt.datetime.fromtimestamp(paid.paid_at, self._zone)
        entry: dict[str, Any] = {
            "year": at.year, "month": at.month, "date": at.day,
            "hour": at.hour, "minute": at.minute, "second": at.second,
            "money": coins_value(paid.money_fen), "coins": coins_value(paid.coins_cents),
            "time": at.strftime("%Y-%m-%d %H:%M:%S"),
        }  # fmt: skip
        if paid.minutes:
            entry["minutes"] = paid.minutes
        return entry

    async def notified(self, pay_type: str, body: bytes, headers: Mapping[str, str]) -> Ack:
        """Verify and settle one notification; the answer the provider expects."""
        provider = self.providers[pay_type]
        if self._apple is not None and provider is self._apple.provider:
            return await self._apple_notified(self._apple, body)
        try:
            notice = provider.verify(body, headers)
        except NotVerified as exc:
            log.warning("%s notification refused: %s", pay_type, exc.reason)
            return provider.refused(400)
        if isinstance(notice, RefundNotice):
            try:
                await self._refunded_by(pay_type, notice)
            except RefundUndecided as exc:
                log.warning("%s refund notice refused for now: %s", pay_type, exc)
                return provider.refused(409)
            return provider.accepted()
        if notice.event == "pending" and not notice.payid:
            return provider.accepted()  # news of no order of ours
        try:
            settled = await self._orders.settle(pay_type, notice, self._wall())
        except IntegrityError:
            return provider.refused(409)
        if settled is Settled.UNKNOWN:
            return provider.refused(404)
        return provider.accepted()

    async def _apple_notified(self, apple: ApplePurchases, body: bytes) -> Ack:
        """An App Store Server Notification V2: a ``REFUND`` takes the credit back, a
        ``ONE_TIME_CHARGE`` credits like the app's own post of the transaction (whichever comes
        first; once), other types change nothing."""
        provider = apple.provider
        try:
            kind, transaction = provider.notification(body)
        except NotVerified as exc:
            log.warning("apple notification refused: %s", exc.reason)
            return provider.refused(400)
        if transaction is not None and kind == "REFUND":
            number = transaction.transaction_id
            await self._refunded_by("apple", RefundNotice("", number, (number,), 0))
        elif transaction is not None and kind == "ONE_TIME_CHARGE":
            await apple.charged(transaction)
        return provider.accepted()

    async def _refunded_by(self, pay_type: str, notice: RefundNotice) -> None:
        """A refund the provider tells of (made at the provider, or one of ours it accepted
        earlier, which succeeded or failed): the credit taken back once, or kept. Acknowledged
        whatever comes of it, since the provider cannot change our answer by sending it again,
        but for RefundUndecided (a cumulative notice while a refund of ours is unanswered): it
        is held, and decided with ours (``Refunds``), and refused all the same, since the
        provider's next try may find ours decided."""
        payid = notice.payid or await self._orders.payid_of_trade(pay_type, notice.trade_no)
        if payid is None:
            log.warning("%s refunded trade %s, which paid no order here", pay_type,
                        notice.trade_no)  # fmt: skip
            return
        reason = f"refunded by {pay_type}" if notice.succeeded else f"{pay_type}: refund failed"
        try:
            done = await self.refunds.announced(pay_type, notice, payid, reason, self._wall())
        except RefundRefused as exc:
            log.warning("%s refunded order %s: %s", pay_type, payid, exc)
            return
        if done is not None:
            log.info("order %s refunded by %s: %s coin cents and %s minutes taken back", payid,
                     pay_type, done.coins_taken, done.minutes_taken)  # fmt: skip

    async def apple_purchase(self, uuid: str, payid: str, signed: str) -> dict[str, Any]:
        """A StoreKit 2 transaction the app posts for its order (CONTRACT §8 ``pay/apple``)."""
        if self._apple is None:
            raise Failed("pay_type_not_enabled")
        return await self._apple.purchase(uuid, payid, signed)

    async def refund(self, payid: str, money_fen: int | None, reason: str) -> Refunded:
        """Refund a paid order through its provider and take back its credit (RefundRefused)."""
        return await self.refunds.refund(payid, money_fen, reason, self._wall())

    async def orders(
        self, uuid: str | None, start: dt.date, end: dt.date, state: str | None
    ) -> dict[str, Any]:
        """Orders opened from ``start`` to ``end`` (inclusive, in ``billing.timezone``)."""
        if end < start:
            raise ValueError("end is before start")
        if state is not None and state not in STATES:
            raise ValueError(f"state is one of {', '.join(STATES)}")
        since = dt.datetime.combine(start, dt.time(), self._zone).timestamp()
        until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), self._zone).timestamp()
        rows = await self._orders.listing(uuid, since, until, state, ORDERS_LIMIT + 1)
        refunded = await self.refunds.of([r.payid for r in rows if r.state in ("paid", "refunded")])
        listed = [self._order(r, refunded.get(r.payid)) for r in rows[:ORDERS_LIMIT]]
        return {"orders": listed, "truncated": len(rows) > ORDERS_LIMIT}

    def _order(self, row: Any, refund: Refunded | None) -> dict[str, Any]:
        def local(at: float | None) -> str | None:
            return None if at is None else dt.datetime.fromtimestamp(at, self._zone).isoformat()

        entry: dict[str, Any] = {
            "payid": row.payid, "account": row.uuid, "product_id": row.product_id,
            "pay_type": row.pay_type, "money": coins_value(row.money),
            "coins": coins_value(row.coins), "minutes": row.minutes, "state": row.state,
            "trade_no": row.trade_no, "note": row.note, "created": local(row.created_at),
            "paid": local(row.paid_at),
        }  # fmt: skip
        if refund is not None:
            entry["refund"] = refund.answer()
        return entry
