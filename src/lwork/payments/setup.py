"""Payments from the settings: the catalogue and the enabled providers."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.billing.ledger import LedgerStore
from lwork.payments.alipay import AlipayProvider
from lwork.payments.apple import AppleProvider
from lwork.payments.orders import OrderStore
from lwork.payments.products import Catalogue
from lwork.payments.provider import Provider
from lwork.payments.reconcile import Reconciler
from lwork.payments.refunds import Refunds
from lwork.payments.service import PaymentService
from lwork.payments.settlement import OrderCounter
from lwork.payments.testpay import TestPayProvider
from lwork.payments.wechat import WechatProvider
from lwork.settings import Settings


def build_payments(
    settings: Settings,
    engine: AsyncEngine,
    ledger: LedgerStore,
    wall: Callable[[], float],
    counted: OrderCounter = lambda provider, state: None,
) -> PaymentService:
    """``counted``: (provider, state) of each order entering a state (the orders metric)."""
    catalogue = Catalogue(settings.billing.products)
    providers: dict[str, Provider] = {}
    alipay = settings.payments.alipay
    if alipay.enabled:
        providers["alipay"] = AlipayProvider(alipay)
    wechat = settings.payments.wechat
    if wechat.enabled:
        providers["wechat"] = WechatProvider(wechat, wall)
    apple = settings.payments.apple
    if apple.enabled:
        providers["apple"] = AppleProvider(apple, catalogue, wall)
    test = settings.payments.test
    if test.enabled:
        providers["test"] = TestPayProvider(test.secret.get_secret_value().encode())
    orders = OrderStore(engine, ledger, catalogue, counted)
    section = settings.payments
    refunds = Refunds(engine, ledger, providers, counted)
    return PaymentService(
        orders,
        catalogue,
        providers,
        settings.payments.order_ttl_s,
        settings.billing.timezone,
        wall,
        refunds,
        Reconciler(
            orders, providers, refunds, section.reconcile_after_s, section.reconcile_every_s, wall
        ),  # fmt: skip
    )
