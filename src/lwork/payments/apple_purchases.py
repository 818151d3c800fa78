"""App Store purchases settled against their orders: the transaction the app posts to
``pay/apple``, and the same transaction in a ``ONE_TIME_CHARGE`` notification, whichever
comes first (the ledger credits a transaction once).

A transaction bought with an ``appAccountToken`` names its order (``payid_of_token``): that
order is the one credited, and it must be the poster's. One without names the order only
through the payid the app posts with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lwork.billing.rating import coins_value
from lwork.errors import Failed
from lwork.payments.apple import AppleProvider, AppleTransaction
from lwork.payments.apple_jws import Unverified
from lwork.payments.orders import OrderStore, payid_of_token
from lwork.payments.products import Catalogue
from lwork.payments.provider import Notice
from lwork.payments.settlement import Settled

log = logging.getLogger("lwork.payments")


class ApplePurchases:
    def __init__(
        self,
        provider: AppleProvider,
        orders: OrderStore,
        catalogue: Catalogue,
        wall: Callable[[], float],
    ) -> None:
        self.provider = provider
        self._orders = orders
        self._catalogue = catalogue
        self._wall = wall

    async def purchase(self, uuid: str, payid: str, signed: str) -> dict[str, Any]:
        """Verified, matched to its order and credited once (CONTRACT §8 ``pay/apple``)."""
        try:
            transaction = self.provider.transaction(signed)
        except Unverified as exc:
            log.warning("pay/apple for %s refused: %s", payid, exc)
            raise Failed("invalid_receipt") from exc
        order = await self._order(transaction, payid)
        if order is None or order.uuid != uuid:
            log.warning("pay/apple by %s: transaction %s is for no order of theirs (%s)", uuid,
                        transaction.transaction_id, payid)  # fmt: skip
            raise Failed("invalid_receipt")
        settled = await self._settle(order, transaction)
        again = await self._orders.get(order.payid)
        if settled is Settled.FLAGGED or again is None or again.state != "paid" or (
            again.trade_no != transaction.transaction_id
        ):  # fmt: skip
            raise Failed("duplicated_payid")
        if order.minutes:
            return {"status": "ok", "minutes": order.minutes}
        return {"status": "ok", "coins": coins_value(order.coins)}

    async def charged(self, transaction: AppleTransaction) -> None:
        """A ``ONE_TIME_CHARGE`` notification's transaction: credited to the order its
        ``appAccountToken`` names, checked as a purchase is. Without a token, the order is
        known only to the app, which posts it."""
        if transaction.account_token is None:
            log.info("apple charge %s names no order: left to the app's post",
                     transaction.transaction_id)  # fmt: skip
            return
        order = await self._order(transaction, "")
        if order is None:
            log.warning("apple charge %s: its appAccountToken names no order here",
                        transaction.transaction_id)  # fmt: skip
            return
        try:
            await self._settle(order, transaction)
        except Failed as exc:
            log.warning("apple charge %s for order %s not credited: %s",
                        transaction.transaction_id, order.payid, exc.reason)  # fmt: skip

    async def _order(self, transaction: AppleTransaction, payid: str) -> Any | None:
        """The App Store order the transaction is for: the one its token names, if any."""
        if transaction.account_token is not None:
            payid = payid_of_token(transaction.account_token)
        order = await self._orders.get(payid)
        return order if order is not None and order.pay_type == "apple" else None

    async def _settle(self, order: Any, transaction: AppleTransaction) -> Settled:
        """Credit the order once (Failed ``money_not_matched`` for another product or price)."""
        if transaction.product_id != self._catalogue.apple_product_id(order.product_id) or (
            transaction.price_milli is not None and transaction.currency == "CNY"
            and transaction.price_milli != order.money * 10
        ):  # fmt: skip
            raise Failed("money_not_matched")
        if order.state == "closed":
            await self._orders.reopen(order.payid, self._wall())  # bought in time, came late
        notice = Notice(order.payid, transaction.transaction_id, order.money, "paid")
        return await self._orders.settle("apple", notice, self._wall())
