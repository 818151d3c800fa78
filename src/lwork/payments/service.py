"""Payments as the app and the providers see them: open an order, list what was paid, settle
a notification."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from lwork.billing.rating import coins_value
from lwork.errors import Failed
from lwork.payments.orders import OrderStore, Recharge, Settled
from lwork.payments.products import Catalogue, Product
from lwork.payments.provider import Ack, NewOrder, NotVerified, Provider

log = logging.getLogger("lwork.payments")

PAY_TYPES = ("alipay", "wechat", "apple", "test")


class PaymentService:
    def __init__(
        self,
        orders: OrderStore,
        catalogue: Catalogue,
        providers: Mapping[str, Provider],
        order_ttl_s: float,
        timezone: str,
        wall: Callable[[], float],
    ) -> None:
        self._orders = orders
        self._catalogue = catalogue
        self.providers = dict(providers)
        """The enabled providers by pay type."""
        self._ttl_s = order_ttl_s
        self._zone = ZoneInfo(timezone)
        self._wall = wall

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
        payid, expires_at = await self._orders.create(
            uuid, uuid_raw, product, pay_type, self._wall(), self._ttl_s
        )
        try:
            extra = await provider.create(
                NewOrder(payid, product.money_fen, product.id, expires_at)
            )
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
        try:
            notice = provider.verify(body, headers)
        except NotVerified as exc:
            log.warning("%s notification refused: %s", pay_type, exc.reason)
            return provider.refused(400)
        try:
            settled = await self._orders.settle(pay_type, notice, self._wall())
        except IntegrityError:
            return provider.refused(409)
        if settled is Settled.UNKNOWN:
            return provider.refused(404)
        return provider.accepted()
