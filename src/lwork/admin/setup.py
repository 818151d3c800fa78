"""The console built from the settings and the services it reads and drives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute

from lwork.accounts.provisioning import ProvisioningService
from lwork.accounts.service import AccountService
from lwork.admin.account_actions import AccountActions
from lwork.admin.accounts import AccountPage
from lwork.admin.audit_page import AuditPage
from lwork.admin.cluster_live import Board, ClusterBoard
from lwork.admin.fraud_page import FraudPage
from lwork.admin.gate import Gate
from lwork.admin.live import LiveCalls
from lwork.admin.online import OnlinePage
from lwork.admin.operators import OperatorStore
from lwork.admin.order_refunds import OrderRefunds
from lwork.admin.orders import OrderPages
from lwork.admin.records import CdrPages
from lwork.admin.second_factor import PendingSignIns
from lwork.admin.settings_page import SettingsPage
from lwork.admin.versions_page import VersionsPage
from lwork.admin.web import Console
from lwork.admin.workers_live import WorkersBoard
from lwork.appversions import VersionStore
from lwork.billing.service import BillingService
from lwork.boss.audit import AuditTrail
from lwork.calls.engine import CallEngine
from lwork.calls.router import CallRouter
from lwork.clock import Clock
from lwork.fraud.store import FraudStore
from lwork.http.client_address import ClientAddress
from lwork.payments.service import PaymentService
from lwork.settings import Settings


@dataclass
class ConsoleMount:
    routes: list[BaseRoute]
    board: Board | None
    """This node's live calls for the consoles of the other nodes (several nodes sharing
    ``bus.url``, or the workers of ``http.workers``), theirs for this one's: started and
    closed with the node."""


def console_mount(
    settings: Settings,
    engine: AsyncEngine,
    operators: OperatorStore,
    calls: Callable[[], CallEngine | None],
    billing: BillingService,
    accounts: AccountService,
    clock: Clock,
    *,
    provisioning: ProvisioningService,
    payments: PaymentService,
    versions: VersionStore,
    fraud: FraudStore,
    server_secret: bytes,
    router: CallRouter | None = None,
    worker: int | None = None,
) -> ConsoleMount:
    """``/admin`` and everything under it; ``calls()``: the running call engine, if any;
    ``server_secret``: the key the second factor's sign-in tokens are signed with;
    ``router``: reaches the node holding a call (hang-up from any node's console);
    ``worker``: this process's index among ``http.workers`` (None: the only one)."""
    # Secure cookies when lwork speaks TLS itself, and always in production, where TLS may end
    # at a proxy in front (README, "Running in production"): a browser then never sends the
    # session over plain HTTP.
    secure = settings.http.tls_cert is not None or settings.env == "production"
    gate = Gate(operators, settings.admin, secure, clock.wall)
    console = Console(
        gate, AuditTrail(engine), ClientAddress(settings.http.trusted_proxies), clock.monotonic,
        PendingSignIns(server_secret),
    )  # fmt: skip
    live = LiveCalls(console, calls, billing.zone, node=settings.node, router=router)
    if settings.bus.url:  # several nodes: each shows all nodes' calls
        live.board = ClusterBoard(settings.bus.url, settings.node, live.own, clock.wall)
    elif worker is not None and router is not None and settings.http.workers > 1:
        # the workers of one machine on the local hub: each shows all workers' calls
        live.board = WorkersBoard(router, settings.node, worker, settings.http.workers,
                                  live.own, clock.monotonic)  # fmt: skip
    console.add_pages(live.routes())
    # Records by dates of the billing time zone, as the BOSS reads them.
    records = CdrPages(console, engine, billing.zone, billing.day_start)
    console.add_pages(records.routes())
    orders = OrderPages(console, engine, billing.zone, billing.day_start)
    console.add_pages(orders.routes())
    console.add_pages(OrderRefunds(console, orders, payments).routes())
    account_page = AccountPage(console, engine, accounts, billing, records)
    console.add_pages(account_page.routes())
    console.add_pages(
        AccountActions(console, account_page, accounts, provisioning, billing).routes()
    )
    console.add_pages(VersionsPage(console, versions).routes())
    console.add_pages(SettingsPage(console, settings).routes())
    console.add_pages(AuditPage(console, billing.zone).routes())
    console.add_pages(FraudPage(console, fraud, billing.zone, clock.wall).routes())
    console.add_pages(
        OnlinePage(console, engine, settings.presence.window_s, billing.zone).routes()
    )
    return ConsoleMount(console.mount(), live.board)
