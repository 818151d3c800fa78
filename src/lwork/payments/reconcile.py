"""Reconciliation: a notification can be lost, so orders still ``created`` some time after
``get_payid`` are asked about at their provider and settled from its answer, through the same
``OrderStore.settle`` as a notification (so a notification racing the answer credits once).

Paid → settled; closed → closed; unknown or unpaid past the order's expiry → closed
``expired``; provider unavailable → left for the next round. One order's or one provider's
failure never stops the round, and the periodic task never dies of one.

Refunds the provider accepted without finishing (WeChat's PROCESSING) wait for its notice, and
refunds whose answer never came (Alipay's, cut by a timeout or a crash) stay ``asked``; one
still undecided that long is asked about too, and finished from the answer, so a lost answer or
notice never leaves a refunded buyer with the credit (nor takes it for a refund not made).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping

from lwork.payments.orders import OrderStore, Waiting
from lwork.payments.provider import NotSupported, Provider, ProviderUnavailable
from lwork.payments.refunds import Refunds
from lwork.payments.settlement import Settled

log = logging.getLogger("lwork.payments")

BATCH = 500
"""Orders asked about per round at most: a backlog is worked through over several rounds."""


class Reconciler:
    def __init__(
        self,
        orders: OrderStore,
        providers: Mapping[str, Provider],
        refunds: Refunds,
        after_s: float,
        every_s: float,
        wall: Callable[[], float],
    ) -> None:
        self._orders = orders
        self._refunds = refunds
        self._providers = providers
        self._after_s = after_s
        self._every_s = every_s
        self._wall = wall
        self._task: asyncio.Task[None] | None = None

    async def round(self) -> Counter[str]:
        """One pass over the waiting orders; how many ended each way."""
        outcomes: Counter[str] = Counter()
        for order in await self._orders.waiting(self._wall() - self._after_s, BATCH):
            try:
                outcomes[await self._one(order)] += 1
            except Exception:  # one order's trouble must not keep the others waiting
                log.exception("reconciling order %s (%s)", order.payid, order.pay_type)
                outcomes["error"] += 1
        for payid, refund_no, pay_type in await self._refunds.pending(
            self._wall() - self._after_s, BATCH
        ):
            try:
                outcome = await self._refunds.settle_pending(payid, refund_no, self._wall())
                outcomes[f"refund_{outcome}"] += 1
            except ProviderUnavailable as exc:
                log.warning("refund %s: %s unavailable (%s); asked again next round", refund_no,
                            pay_type, exc)  # fmt: skip
                outcomes["refund_unavailable"] += 1
            except Exception:  # one refund's trouble must not keep the others waiting
                log.exception("reconciling refund %s (%s)", refund_no, pay_type)
                outcomes["error"] += 1
        if outcomes:
            log.info("reconciliation: %s", dict(sorted(outcomes.items())))
        return outcomes

    async def _one(self, order: Waiting) -> str:
        provider = self._providers.get(order.pay_type)
        now = self._wall()
        if provider is None:  # a provider since disabled: nobody can pay it any more
            return "expired" if now > order.expires_at and await self._expire(order) else "left"
        try:
            notice = await provider.query(order.payid)
        except ProviderUnavailable as exc:
            log.warning("order %s: %s unavailable (%s); asked again next round", order.payid,
                        order.pay_type, exc)  # fmt: skip
            return "unavailable"
        except NotSupported:
            notice = None
        if notice is not None and notice.event != "pending":
            settled = await self._orders.settle(order.pay_type, notice, self._wall())
            return settled.value if settled is not Settled.UNCHANGED else "unchanged"
        if self._wall() > order.expires_at and await self._expire(order):
            return "expired"
        return "waiting"

    async def _expire(self, order: Waiting) -> bool:
        expired = await self._orders.expire(order.payid, self._wall())
        if expired:
            log.info("order %s closed: expired unpaid", order.payid)
        return expired

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="payments-reconcile")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.round()
            except Exception:  # a database hiccup must not stop the next rounds
                log.exception("reconciliation round")
