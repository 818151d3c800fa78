"""The console built from the settings and the services it reads and drives."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute

from lwork.accounts.service import AccountService
from lwork.admin.accounts import AccountPage
from lwork.admin.audit_page import AuditPage
from lwork.admin.gate import Gate
from lwork.admin.live import LiveCalls
from lwork.admin.online import OnlinePage
from lwork.admin.operators import OperatorStore
from lwork.admin.orders import OrderPages
from lwork.admin.records import CdrPages
from lwork.admin.web import Console
from lwork.billing.service import BillingService
from lwork.boss.audit import AuditTrail
from lwork.calls.engine import CallEngine
from lwork.clock import Clock
from lwork.http.client_address import ClientAddress
from lwork.settings import Settings


def console_mount(
    settings: Settings,
    engine: AsyncEngine,
    operators: OperatorStore,
    calls: Callable[[], CallEngine | None],
    billing: BillingService,
    accounts: AccountService,
    clock: Clock,
) -> list[BaseRoute]:
    """``/admin`` and everything under it; ``calls()``: the running call engine, if any."""
    # Secure cookies when lwork speaks TLS itself, and always in production, where TLS may end
    # at a proxy in front (README, "Running in production"): a browser then never sends the
    # session over plain HTTP.
    secure = settings.http.tls_cert is not None or settings.env == "production"
    gate = Gate(operators, settings.admin, secure, clock.wall)
    console = Console(
        gate, AuditTrail(engine), ClientAddress(settings.http.trusted_proxies), clock.monotonic
    )
    console.add_pages(LiveCalls(console, calls).routes())
    # Records by dates of the billing time zone, as the BOSS reads them.
    records = CdrPages(console, engine, billing.zone, billing.day_start)
    console.add_pages(records.routes())
    console.add_pages(OrderPages(console, engine, billing.zone, billing.day_start).routes())
    console.add_pages(AccountPage(console, engine, accounts, billing, records).routes())
    console.add_pages(AuditPage(console, billing.zone).routes())
    console.add_pages(
        OnlinePage(console, engine, settings.presence.window_s, billing.zone).routes()
    )
    return console.mount()
