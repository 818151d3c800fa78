"""The BOSS interface built from the settings and the services it drives."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Route

from lwork.accounts.provisioning import ProvisioningService
from lwork.accounts.service import AccountService
from lwork.accounts.store import AccountStore
from lwork.billing import operator
from lwork.billing.service import BillingService
from lwork.boss.audit import AuditTrail
from lwork.boss.endpoint import PATH, BossEndpoint
from lwork.boss.gate import BossGate
from lwork.boss.nmsi.server import NmsiServer, did_owner
from lwork.boss.nmsi.session import SessionRules
from lwork.boss.operations import BossOperations
from lwork.boss.store import BossStore
from lwork.boss.webhook import CdrWebhook
from lwork.clock import Clock
from lwork.http.client_address import ClientAddress
from lwork.payments.service import PaymentService
from lwork.settings import Settings


def boss_route(
    settings: Settings,
    engine: AsyncEngine,
    provisioning: ProvisioningService,
    billing: BillingService,
    accounts: AccountService,
    wall: Callable[[], float],
    payments: PaymentService | None = None,
) -> Route:
    section = settings.boss
    store = BossStore(engine)
    keys = {key_id: [s.get_secret_value() for s in secrets]
            for key_id, secrets in section.keys.items()}  # fmt: skip

    async def known_account(account: str) -> str:
        return await operator.known_account(accounts, account)

    endpoint = BossEndpoint(
        gate=BossGate(keys, section.allowed_sources, section.window_s, store, wall),
        store=store,
        operations=BossOperations(provisioning, billing, accounts, wall, payments),
        cdrs=operator.cdr_reader(billing, section.cdr_batch),
        known_account=known_account,
        audit=AuditTrail(engine),
        addresses=ClientAddress(settings.http.trusted_proxies),
        body_limit=section.body_limit,
        wall=wall,
    )
    return Route(PATH, endpoint.handle, methods=["POST"])


def nmsi_server(
    settings: Settings,
    engine: AsyncEngine,
    store: AccountStore,
    provisioning: ProvisioningService,
    billing: BillingService,
    accounts: AccountService,
    clock: Clock,
) -> NmsiServer:
    """The NMSI server (started by the app when ``boss.nmsi_enabled``), over the same operations
    and audit trail as the HTTP interface."""
    section = settings.boss
    rules = SessionRules(
        section.nmsi_user, section.nmsi_password.get_secret_value(), section.nmsi_heartbeat_s
    )
    return NmsiServer(
        BossOperations(provisioning, billing, accounts, clock.wall), AuditTrail(engine),
        did_owner(store), rules, section.nmsi_max_frame, clock.wall, clock.monotonic,
    )  # fmt: skip


def cdr_webhook(
    settings: Settings, engine: AsyncEngine, client: httpx.AsyncClient, wall: Callable[[], float]
) -> CdrWebhook | None:
    """The CDR webhook's sender, if ``boss.cdr_webhook_url`` is set."""
    boss = settings.boss
    if not boss.cdr_webhook_url:
        return None
    key_id = boss.cdr_webhook_key or next(iter(boss.keys))
    return CdrWebhook(
        engine, client, boss.cdr_webhook_url,
        (key_id, boss.keys[key_id][0].get_secret_value()), ZoneInfo(settings.billing.timezone),
        wall, timeout_s=boss.cdr_webhook_timeout_s, backoff_s=boss.cdr_webhook_backoff_s,
        backoff_max_s=boss.cdr_webhook_backoff_max_s, concurrency=boss.cdr_webhook_concurrency,
        batch=boss.cdr_webhook_batch,
    )  # fmt: skip
