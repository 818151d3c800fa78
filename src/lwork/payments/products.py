"""The catalogue: which product an order is for, and what it credits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from lwork.billing.buckets import Grant, day_periods
from lwork.billing.rating import COIN, Balance
from lwork.settings import ProductSettings

FEN = 100
"""Fen per yuan: prices are kept as integer fen."""


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    group: str
    money_fen: int
    coins_cents: int
    """Hundredths of a coin it credits (0 for a minute package)."""
    minutes: int
    """Package minutes it credits in all (per period × periods; 0 for a coin pack)."""
    periods: int = 1
    period_days: int = 30
    apple_product_id: str = ""
    """Its App Store product id (``id`` unless the catalogue names another)."""

    def grants(self, paid_at: float) -> list[Grant]:
        """A minute package's dated buckets, its first period starting when it is paid."""
        per_period = self.minutes // self.periods
        return day_periods(per_period, self.periods, self.period_days, paid_at)

    @property
    def credit(self) -> Balance:
        return Balance(coins=self.coins_cents, minutes=self.minutes)

    @classmethod
    def of(cls, entry: ProductSettings) -> Product:
        return cls(
            id=entry.id,
            group=entry.group,
            money_fen=int(entry.money * FEN),
            coins_cents=int((entry.coins or Decimal(0)) * COIN),
            minutes=(entry.minutes or 0) * entry.periods,
            periods=entry.periods,
            period_days=entry.period_days,
            apple_product_id=entry.apple_product_id or entry.id,
        )


class Catalogue:
    def __init__(self, entries: Iterable[ProductSettings]) -> None:
        self.products = [Product.of(entry) for entry in entries]
        self._by_id = {product.id: product for product in self.products}

    def get(self, product_id: str) -> Product | None:
        return self._by_id.get(product_id)

    def apple_product_id(self, product_id: str) -> str:
        """The App Store id a product sells as; its own id if it left the catalogue."""
        product = self._by_id.get(product_id)
        return product.apple_product_id if product is not None else product_id

    def find(
        self, group: str, product_id: str | None, money: Decimal | None, coins: Decimal | None
    ) -> Product | None:
        """The product an app asks for: by id, else by price and coins within its group (a
        minute package has coins 0); None when nothing in the group matches."""
        if product_id is not None:
            product = self._by_id.get(product_id)
            return product if product is not None and product.group == group else None
        if money is None or coins is None:
            return None
        fen, cents = money * FEN, coins * COIN
        for product in self.products:
            if product.group == group and product.money_fen == fen and product.coins_cents == cents:
                return product
        return None


def describe(entry: ProductSettings) -> str:
    """One line of ``lwork boss products``."""
    if entry.coins is not None:
        gives = f"{entry.coins} coins"
    else:
        gives = f"{entry.minutes} minutes × {entry.periods} period(s) of {entry.period_days} days"
    return f"{entry.id}\t{entry.group}\t{entry.money} yuan\t{gives}"
