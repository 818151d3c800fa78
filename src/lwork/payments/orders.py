"""Orders in the database: opened, listed, expired, and settled by verified notifications.

Settling (``settlement.py``) locks the orders before it reads them, so duplicate notifications
for one order each see the state the one before it left. The credit is a ledger row referenced
by the provider's trade number, written in the same transaction as ``paid``.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, bindparam, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.buckets import Grant
from lwork.billing.ledger import LedgerStore
from lwork.payments.products import Catalogue, Product
from lwork.payments.provider import Notice
from lwork.payments.settlement import OrderCounter, Settled, Settlements
from lwork.storage.tables import orders

log = logging.getLogger("lwork.payments")

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PAYID_LENGTH = 22
"""22 characters of 62: 130 random bits, within every provider's 32-character order number."""


def new_payid() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(PAYID_LENGTH))


def payid_of_token(token: uuid.UUID) -> str:
    """The payid of the order an App Store ``appAccountToken`` was made for: the token's 128
    bits written in the payid alphabet (22 characters hold them), so each gives the other and
    a transaction names its order without a lookup table."""
    number, digits = token.int, []
    for _ in range(PAYID_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def token_of_payid(payid: str) -> uuid.UUID | None:
    """The ``appAccountToken`` of an order opened by ``payid_of_token``; None for another."""
    number = 0
    for char in payid:
        digit = _ALPHABET.find(char)
        if digit < 0:
            return None
        number = number * len(_ALPHABET) + digit
    if len(payid) != PAYID_LENGTH or number >> 128:
        return None
    return uuid.UUID(int=number)


_STILL_CREATED = orders.c.state == literal_column("'created'")
"""Written into the SQL, not bound: only then may a database plan the query on the index of
``created`` orders alone (``ix_orders_waiting``; PostgreSQL's generic plan of a bound state
could not)."""


# Orders still ``created`` opened before ``created_before``, oldest first (what reconciliation
# asks about, every round on every worker), read on ``ix_orders_waiting``. Built once, as one
# built per call left a reference cycle each time (``bench.soak --census``).
WAITING = (
    select(orders.c.payid, orders.c.pay_type, orders.c.expires_at)
    .where(_STILL_CREATED, orders.c.created_at < bindparam("created_before"))
    .order_by(orders.c.created_at)
    .limit(bindparam("limit", type_=Integer))
)


@dataclass(frozen=True, slots=True)
class Recharge:
    paid_at: float
    money_fen: int
    coins_cents: int
    minutes: int


@dataclass(frozen=True, slots=True)
class Waiting:
    """An order still ``created``, to be asked about at its provider."""

    payid: str
    pay_type: str
    expires_at: float


class OrderStore:
    def __init__(
        self,
        engine: AsyncEngine,
        ledger_store: LedgerStore,
        catalogue: Catalogue | None = None,
        counted: OrderCounter = lambda provider, state: None,
    ) -> None:
        """``catalogue`` dates a paid minute package's periods (none: minutes never expire);
        ``counted`` counts each order entering a state (a metric)."""
        self._engine = engine
        self._counted = counted
        self._ledger = ledger_store
        self._catalogue = catalogue
        self._settlements = Settlements(ledger_store, self._package_grants, counted)

    async def create(
        self, uuid: str, uuid_raw: str, product: Product, pay_type: str, now: float, ttl_s: float,
        payid: str | None = None,
    ) -> tuple[str, float]:  # fmt: skip
        """A new ``created`` order (its payid, random unless given, and expiry); the account's
        expired ones close."""
        payid, expires_at = payid or new_payid(), now + ttl_s
        async with self._engine.begin() as conn:
            expired = await conn.execute(
                update(orders)
                .where(orders.c.uuid == uuid, orders.c.state == "created",
                       orders.c.expires_at < now)
                .values(state="closed", note="expired", updated_at=now)
                .returning(orders.c.pay_type)
            )  # fmt: skip
            closed = list(expired.scalars())
            await conn.execute(orders.insert().values(
                payid=payid, uuid=uuid, uuid_raw=uuid_raw[:64], product_id=product.id,
                pay_type=pay_type, money=product.money_fen, coins=product.coins_cents,
                minutes=product.minutes, state="created", created_at=now, expires_at=expires_at,
                updated_at=now))  # fmt: skip
        for provider in closed:
            self._counted(provider, "closed")
        self._counted(pay_type, "created")
        return payid, expires_at

    async def forget(self, payid: str) -> None:
        """Drop an order the provider would not open (nothing was paid)."""
        async with self._engine.begin() as conn:
            await conn.execute(orders.delete().where(orders.c.payid == payid))

    async def get(self, payid: str) -> Any | None:
        async with self._engine.connect() as conn:
            return (await conn.execute(select(orders).where(orders.c.payid == payid))).first()

    async def payid_of_trade(self, pay_type: str, trade_no: str) -> str | None:
        """The order a provider's trade number paid (refunds announced by the provider): not
        one it was refused for, which is ``flagged`` with the same trade number."""
        query = select(orders.c.payid).where(
            orders.c.pay_type == pay_type, orders.c.trade_no == trade_no,
            orders.c.state.in_(("paid", "refunded")),
        )  # fmt: skip
        async with self._engine.connect() as conn:
            payid = await conn.scalar(query)
        return None if payid is None else str(payid)

    async def recharges(self, uuid: str) -> list[Recharge]:
        query = (
            select(orders.c.paid_at, orders.c.money, orders.c.coins, orders.c.minutes)
            .where(orders.c.uuid == uuid, orders.c.state == "paid")
            .order_by(orders.c.paid_at, orders.c.payid)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Recharge(r.paid_at, r.money, r.coins, r.minutes) for r in rows]

    async def listing(
        self, uuid: str | None, since: float, until: float, state: str | None, limit: int
    ) -> list[Any]:
        """Orders opened in ``[since, until)``, oldest first, at most ``limit``."""
        query = select(orders).where(orders.c.created_at >= since, orders.c.created_at < until)
        if uuid is not None:
            query = query.where(orders.c.uuid == uuid)
        if state is not None:
            query = query.where(orders.c.state == state)
        query = query.order_by(orders.c.created_at, orders.c.payid).limit(limit)
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def waiting(self, created_before: float, limit: int) -> list[Waiting]:
        """Orders still ``created`` that were opened before ``created_before``, oldest first."""
        async with self._engine.connect() as conn:
            params = {"created_before": created_before, "limit": limit}
            rows = (await conn.execute(WAITING, params)).all()
        return [Waiting(r.payid, r.pay_type, r.expires_at) for r in rows]

    async def expire(self, payid: str, now: float) -> bool:
        """Close an unpaid order past its expiry; False if something settled it first."""
        async with self._engine.begin() as conn:
            closed = await conn.execute(
                update(orders)
                .where(orders.c.payid == payid, orders.c.state == "created")
                .values(state="closed", note="expired", updated_at=now)
                .returning(orders.c.pay_type)
            )
            provider = closed.scalar()
        if provider is not None:
            self._counted(provider, "closed")
        return provider is not None

    async def reopen(self, payid: str, now: float) -> bool:
        """Open again an order closed because it expired unpaid, for a payment that came
        after all (the App Store knows no deadline: StoreKit delivers a purchase the app
        crashed during when the app next starts). False when it was not closed as expired."""
        async with self._engine.begin() as conn:
            reopened = await conn.execute(
                update(orders)
                .where(orders.c.payid == payid, orders.c.state == "closed",
                       orders.c.note == "expired")
                .values(state="created", note=None, updated_at=now)
            )  # fmt: skip
        if reopened.rowcount:
            log.info("order %s reopened: paid after it expired", payid)
        return bool(reopened.rowcount)

    async def settle(self, provider: str, notice: Notice, now: float) -> Settled:
        """Settle a verified notification (with others arriving meanwhile, ``settlement.py``);
        IntegrityError if its trade's credit by another order raced it twice (nothing written)."""
        return await self._settlements.settle(provider, notice, now)

    def _package_grants(self, product_id: str, minutes: int, paid_at: float) -> list[Grant] | None:
        """A paid package's periods from now; None (minutes that never expire) when the
        catalogue no longer has the product as it was ordered: the buyer keeps what was paid."""
        product = self._catalogue.get(product_id) if self._catalogue is not None else None
        if not minutes or product is None or product.minutes != minutes:
            return None
        return product.grants(paid_at)
