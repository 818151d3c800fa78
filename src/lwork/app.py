"""The composition root: every long-lived object is built here, once, and injected."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from lwork.accounts.api import AccountApi
from lwork.accounts.codes import CodePolicy, CodeService
from lwork.accounts.guess_store import GuessStore
from lwork.accounts.guess_throttle import GuessPolicy
from lwork.accounts.live_sessions import LiveSessions
from lwork.accounts.passwords import PasswordService
from lwork.accounts.poll_touches import PollTouches
from lwork.accounts.poll_writes_sqlite import SqlitePollWrites
from lwork.accounts.presence import SessionPresence
from lwork.accounts.provisioning import ProvisioningService
from lwork.accounts.service import AccountService, AuthPolicy
from lwork.accounts.setup import server_secret, sms_provider
from lwork.accounts.sms import SmsProvider
from lwork.accounts.sms_caps import SendCaps
from lwork.accounts.store import AccountStore
from lwork.admin.cluster_live import Board
from lwork.admin.operators import OperatorStore
from lwork.admin.setup import console_mount
from lwork.appversions import VersionApi, VersionStore
from lwork.billing.api import BillingApi
from lwork.billing.ledger import LedgerStore
from lwork.billing.service import BillingPolicy, BillingService
from lwork.boss.opening import OpeningMinutes
from lwork.boss.setup import boss_route, cdr_webhook, nmsi_server
from lwork.calls.account_sweep import DEACTIVATED, AccountSweep
from lwork.calls.api import CallApi
from lwork.calls.boundary import NoTrunk, PhoneDialer
from lwork.calls.bridge import Timing
from lwork.calls.callback_api import CallbackApi
from lwork.calls.charging import CallCharging
from lwork.calls.engine import CallEngine, CallPolicy
from lwork.calls.inbound import accept_invite
from lwork.calls.records_store import RecordStore
from lwork.calls.recovery import RecordKeeper
from lwork.calls.router import CallRouter
from lwork.clock import Clock, SystemClock
from lwork.fraud.service import FraudService
from lwork.fraud.setup import fraud_policy
from lwork.fraud.store import FraudStore
from lwork.gcpolicy import SurvivorFreezer
from lwork.http.openapi import openapi_document
from lwork.http.operational import MetricsAccess, operational_routes
from lwork.http.request import ApiRequest
from lwork.http.routing import Reply, Route, RouteTable
from lwork.http.server import EDGE, HttpEdge, build_starlette_composed
from lwork.http.shared_limits import LimitExchange, limiter_factory, machine_limiter
from lwork.http.worker_metrics import machine_scrape
from lwork.media.control import RelayConnection, media_control
from lwork.media.ng.client import NgClient
from lwork.metrics import NodeMetrics
from lwork.outbound_tls import outbound_tls
from lwork.payments.api import PaymentApi
from lwork.payments.notify import notify_endpoints
from lwork.payments.service import PaymentService
from lwork.payments.setup import build_payments
from lwork.push.api import PushChannelApi
from lwork.push.bus import Bus, BusMessage, Resync, SessionsChanged
from lwork.push.channel import PollRegistry
from lwork.push.mailbox import Mailbox, open_mailbox
from lwork.push.service import PushPolicy, PushService
from lwork.push.setup import build_bus, build_providers
from lwork.push.upkeep import Upkeep
from lwork.settings import Settings
from lwork.sip.trunk.user_agent import Trunk
from lwork.sip.trunk.wiring import TrunkLegs, trunk_config
from lwork.storage.connection_budget import check_connection_budget
from lwork.storage.engine import create_engine, migrate, sqlite_hot_path
from lwork.storage.units import Units
from lwork.telemetry import Telemetry, telemetry_for

log = logging.getLogger("lwork")


@dataclass
class CallSide:
    """What is composed once the media relay and the SIP trunk run: the call engine over them,
    and what reaches into it."""

    relay: RelayConnection
    calls: CallEngine
    sip_address: tuple[str, int] | None
    """Where the SIP trunk user agent listens (None: SIP disabled)."""


class NotStarted(RuntimeError):
    """The call side exists only between start-up and shut-down."""


@dataclass
class Services:
    """What the process holds; tests reach the engine through it for set-up."""

    engine: AsyncEngine
    accounts: AccountService
    account_store: AccountStore
    versions: VersionStore
    passwords: PasswordService
    push: PushService
    polls: PollRegistry
    mailbox: Mailbox
    billing: BillingService
    fraud: FraudService
    records: RecordStore
    keeper: RecordKeeper
    provisioning: ProvisioningService
    """BOSS's provisioning (the CLI's and the BOSS interface's): deactivating an account ends
    its live calls here at once, once started."""
    payments: PaymentService
    """Orders, refunds and reconciliation (the CLI's and the BOSS interface's)."""
    operators: OperatorStore
    """The console's operator users and sign-in sessions."""
    telemetry: Telemetry
    """The labelled series the node keeps (none with ``metrics.enabled = false``)."""
    nmsi_address: tuple[str, int] | None = None
    """Where the NMSI server listens, once started (``boss.nmsi_enabled``)."""
    call_side: CallSide | None = None
    """Set at start-up (see ``CallSide``); kept after shut-down for what tests read then."""

    def started(self) -> CallSide:
        if self.call_side is None:
            raise NotStarted("lwork has not started: the call engine does not exist yet")
        return self.call_side

    @property
    def calls(self) -> CallEngine:
        return self.started().calls

    @property
    def ng(self) -> NgClient:
        """The ng client of the relay the call engine uses."""
        return self.started().relay.ng

    @property
    def sip_address(self) -> tuple[str, int] | None:
        return self.started().sip_address


def build_app(
    settings: Settings,
    clock: Clock | None = None,
    sms: SmsProvider | None = None,
    on_ready: Callable[[], None] | None = None,
    bus: Bus | None = None,
    worker: int | None = None,
    limits: LimitExchange | None = None,
) -> tuple[Starlette, Services]:
    """The whole server. ``sms`` replaces the configured SMS provider (the simulator's demo);
    ``on_ready`` runs once everything has started. ``bus`` replaces the one ``bus.url`` names
    (the local hub's, linking ``http.workers``); ``worker`` is this process's index among them
    (its supervisor migrated the database already); ``limits`` makes its rate limits hold for
    the whole machine."""
    clock = clock or SystemClock()
    telemetry = telemetry_for(settings.metrics.enabled)
    engine = create_engine(settings.database_url, settings.database.pool_size)
    http_client = httpx.AsyncClient(verify=outbound_tls(settings.outbound_ca_file))
    auth = settings.auth
    passwords = PasswordService(
        time_cost=auth.argon2_time_cost,
        memory_kib=auth.argon2_memory_kib,
        parallelism=auth.argon2_parallelism,
        workers=auth.hash_workers,
        queue=auth.hash_queue,
    )
    sms_settings, sms_sender = settings.sms, sms
    codes = CodeService(
        engine,
        sms_sender or sms_provider(sms_settings, http_client),
        CodePolicy(
            ttl_s=sms_settings.code_ttl_s,
            max_attempts=sms_settings.max_attempts,
            caps=SendCaps(
                resend_interval_s=sms_settings.resend_interval_s,
                per_number_per_day=sms_settings.per_number_per_day,
                per_ip_per_hour=sms_settings.per_ip_per_hour,
                per_prefix_per_hour=sms_settings.per_prefix_per_hour,
                global_per_hour=sms_settings.global_per_hour,
                prefix_length=sms_settings.prefix_length,
            ),
            text=sms_settings.text,
        ),
        server_secret(settings),
        telemetry,
    )
    hot_path = sqlite_hot_path(engine)
    units = Units(engine, hot_path)
    store = AccountStore(engine, units)
    presence = SessionPresence(store, settings.presence.window_s, clock.wall)
    shared_bus = bus is not None or bool(settings.bus.url)
    bus = bus or build_bus(settings.bus)
    live = LiveSessions(store, auth.session_ttl_s, clock.monotonic, clock.wall)
    touches = PollTouches(
        SqlitePollWrites(hot_path) if hot_path is not None else store, settings.presence.window_s
    )
    mailbox = open_mailbox(engine, settings.push.mailbox_size, hot_path)
    upkeep = Upkeep(touches, mailbox, clock.wall)
    registry = PollRegistry(bus, settings.push.hold_s)

    def on_bus(message: BusMessage) -> None:
        match message:
            case SessionsChanged(account=account):  # a login, logout or reset on any node
                presence.forget(account)
                live.forget(account)
            case Resync():
                live.clear()

    async def sessions_changed(uuid: str) -> None:
        on_bus(SessionsChanged(uuid))  # at once here; other nodes hear it over the bus
        await bus.publish(SessionsChanged(uuid))

    bus.subscribe(on_bus)
    http2_client = httpx.AsyncClient(http2=True, verify=outbound_tls(settings.outbound_ca_file))
    push = PushService(
        store=store,
        sessions=live,
        mailbox=mailbox,
        bus=bus,
        providers=build_providers(settings.push, http_client, http2_client),
        policy=PushPolicy(
            invite_ttl_s=settings.push.invite_ttl_s,
            account_event_ttl_s=settings.push.account_event_ttl_s,
        ),
        wall=clock.wall,
        telemetry=telemetry,
    )
    channel = PushChannelApi(
        store=store,
        sessions=live,
        touches=touches,
        mailbox=mailbox,
        registry=registry,
        hold_s=settings.push.hold_s,
        session_ttl_s=auth.session_ttl_s,
        require_token=auth.require_token,
        wall=clock.wall,
        presence_changed=presence.forget,
        telemetry=telemetry,
        hold_spread=settings.push.hold_spread,
    )
    billing = BillingService(
        LedgerStore(engine, units), lambda uuid: accounts.group(uuid),
        BillingPolicy.of(settings.billing), clock.wall,
    )  # fmt: skip
    fraud = FraudService(
        FraudStore(engine, units), billing, fraud_policy(settings),
        group_of=lambda uuid: accounts.group(uuid), did_of=lambda uuid: accounts.did(uuid),
        wall=clock.wall,
    )  # fmt: skip
    accounts = AccountService(
        store=store,
        live=live,
        passwords=passwords,
        codes=codes,
        policy=AuthPolicy(
            require_token=auth.require_token,
            session_ttl_s=auth.session_ttl_s,
            poll_window_s=settings.presence.window_s,
        ),
        guesses=GuessStore(
            engine,
            GuessPolicy(
                free_failures=auth.login_free_failures,
                base_s=auth.login_backoff_base_s,
                max_s=auth.login_backoff_max_s,
                per_account_per_hour=auth.login_per_hour_per_account,
            ),
            clock.wall,
        ),
        wall=clock.wall,
        on_kicked=push.device_kicked,
        on_ended=push.session_ended,
        sessions_changed=sessions_changed,
        on_registered=billing.welcome,
        sms_destination=fraud.check_sms,
    )

    async def reachable(number: str) -> str | None:
        return await accounts.reachable(number, settings.presence.window_s)

    timing = Timing(
        fallback_s=settings.calls.p2p_fallback_s,
        ring_timeout_s=settings.calls.ring_timeout_s,
        keepalive_s=settings.calls.keepalive_s,
        warning_s=settings.billing.warning_s,
    )
    webhook = cdr_webhook(settings, engine, http_client, clock.wall)
    records = RecordStore(
        engine, billing.ledger, webhook is not None, webhook.wake if webhook else None
    )
    # This life of the node: records it opens are its own to heart-beat; after a crash the
    # next life (same node name, another owner) closes them.
    charging = CallCharging(
        billing, records, node=settings.node, owner=f"{settings.node}/{secrets.token_hex(6)}",
        wall=clock.wall, telemetry=telemetry,
    )  # fmt: skip
    keeper = RecordKeeper(
        records, charging, heartbeat_s=settings.calls.cdr_heartbeat_s,
        lease_s=settings.calls.cdr_lease_s, wall=clock.wall,
    )  # fmt: skip

    async def deactivated(uuid: str) -> None:
        # Calls exist only between start-up and shut-down; a process without them (the CLI)
        # leaves them to the serving nodes' account sweep.
        if services.call_side is not None:
            await services.call_side.calls.end_calls_of(uuid, DEACTIVATED)

    async def sessions_closed(uuid: str, devices: list[str]) -> None:
        await sessions_changed(uuid)
        for device in devices:
            await push.session_ended(uuid, device)

    provisioning = ProvisioningService(
        store, passwords, on_deactivated=deactivated,
        on_opened=OpeningMinutes(billing, settings.boss.open_minutes),
        on_sessions_ended=sessions_closed,
    )  # fmt: skip
    # Several nodes share a bus: requests for a call go to the node holding it.
    router = CallRouter(
        settings.node, bus if shared_bus else None, settings.calls.forward_timeout_s
    )
    caller_id_from_did = settings.sip.caller_id == "did_else_uuid"
    sip_config = trunk_config(settings.sip) if settings.sip.enabled else None  # bad: fails now
    versions = VersionStore(engine, clock.monotonic)
    nmsi = (
        nmsi_server(settings, engine, store, provisioning, billing, accounts, clock)
        if settings.boss.nmsi_enabled
        else None
    )
    payments = build_payments(settings, engine, billing.ledger, clock.wall, telemetry.orders.inc)
    operators = OperatorStore(engine, passwords, server_secret(settings))
    metrics_access = MetricsAccess(
        settings.metrics.token.get_secret_value(),
        settings.metrics.allow_from,
        settings.metrics.public,
    )
    with limiter_factory(limits):
        ip_limiter = machine_limiter("http.ip", settings.http.ip_rate_per_minute, 60.0)
        login_limiter = machine_limiter("auth.login", auth.login_per_minute_per_ip, 60.0)

    def call_engine(ng: NgClient, sip_legs: PhoneDialer, transcoding: bool) -> CallEngine:
        """The call engine over a running relay and trunk (``NoTrunk`` when SIP is off)."""
        return CallEngine(
            node=settings.node,
            media=ng,
            push=push,
            trunk=sip_legs,
            reachable=reachable,
            owner=accounts.owner,
            policy=CallPolicy(
                timing=timing,
                inbound_timing=dataclasses.replace(
                    timing, ring_timeout_s=settings.sip.inbound_ring_s
                ),
                # Nobody keeps a callback alive, nobody is warned: it ends by its length at most.
                callback_timing=Timing(max_s=settings.calls.callback_max_s),
                payload_mode=settings.calls.payload_mode,
                country_code=settings.sip.default_country_code,
                stats_refresh_s=settings.calls.stats_refresh_s,
                ended_memory_s=settings.calls.ended_memory_s,
                transcoding=transcoding,
            ),
            monotonic=clock.monotonic,
            wall=clock.wall,
            charging=charging,
            fraud=fraud,
            telemetry=telemetry,
        )

    def edge_over(side: CallSide) -> HttpEdge:
        """The HTTP edge with every route, the call routes over the started call engine."""
        calls, relay = side.calls, side.relay

        def quality() -> dict[str, float]:
            loss, jitter = calls.media_quality()
            return {"relay_loss_ratio": loss, "relay_jitter_ms": jitter}

        node_metrics = NodeMetrics(
            lambda: {
                "held_polls": registry.held,
                "polls_replaced": registry.replaced,
                "mailbox_dropped": mailbox.dropped,
                "active_calls": calls.active,
                "calls_forwarded": router.forwarded,
                "calls_forward_unanswered": router.unanswered,
                "relay_restarts": relay.restarts,
                "cdr_outbox_depth": webhook.depth if webhook else 0,
                "cdr_outbox_oldest_s": webhook.oldest_s if webhook else 0.0,
                "worker": worker or 0,
                **quality(),
            },
            telemetry,
        )
        machine = None
        if worker is not None and settings.metrics.enabled:  # a scrape shows every worker
            machine = machine_scrape(
                router, node_metrics, settings.node, worker, settings.http.workers
            )
        table = RouteTable(
            [
                *AccountApi(accounts, presence).routes(),
                *channel.routes(),
                *CallApi(calls, accounts, router, caller_id_from_did).routes(),
                *CallbackApi(calls, accounts, router, caller_id_from_did, fraud).routes(),
                *VersionApi(versions).routes(),
                *BillingApi(billing, accounts).routes(),
                *PaymentApi(payments, accounts).routes(),
                *operational_routes(
                    engine,
                    node_metrics if settings.metrics.enabled else None,
                    metrics_access,
                    machine,
                ),
            ]
        )
        document = openapi_document(table)

        async def openapi(req: ApiRequest) -> Reply:
            return document

        return HttpEdge(
            RouteTable([*table.routes, Route("GET", "/openapi.json", openapi, rate_limited=False)]),
            body_limit=settings.http.body_limit,
            ip_limiter=ip_limiter,
            login_limiter=login_limiter,
            trusted_proxies=settings.http.trusted_proxies,
            monotonic=clock.monotonic,
            telemetry=telemetry,
        )

    freezer = (
        SurvivorFreezer(settings.http.gc_release_every_s, clock.monotonic)
        if settings.http.gc_freeze_survivors
        else None
    )

    console_boards: list[Board] = []  # the console's live calls of other nodes or workers

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, HttpEdge]]:
        if worker is None:
            await migrate(engine)
            await check_connection_budget(engine, 1, settings.database.pool_size)
        await bus.start()
        if limits is not None:
            await limits.start()
        upkeep.start()
        async with media_control(settings.media) as relay:
            # The call engine dials through the trunk and answers its INVITEs: the trunk is
            # built first (no I/O yet), given the engine's invite handler once the engine
            # exists, then started.
            trunk = None if sip_config is None else Trunk(sip_config)
            calls = call_engine(
                relay.ng, NoTrunk() if trunk is None else TrunkLegs(trunk), relay.transcoding
            )
            sip_address = None
            if trunk is not None:
                trunk.on_invite = partial(accept_invite, calls)
                sip_address = await trunk.start()
                keeper.end_dialog = trunk.end_persisted
                log.info("SIP trunk on %s:%d toward %s", *sip_address, settings.sip.proxy_host)
            sweep = AccountSweep([calls], accounts.inactive_among, settings.calls.account_sweep_s)
            if relay.child is not None:
                relay.child.on_restart = calls.relay_restarted
            side = CallSide(relay=relay, calls=calls, sip_address=sip_address)
            edge = edge_over(side)
            services.call_side = side
            await keeper.start()  # after the trunk: orphaned dialogs get their BYE
            await calls.start_ticker()
            sweep.start()
            payments.reconciler.start()
            if webhook is not None:
                webhook.start()
            if nmsi is not None:
                services.nmsi_address = await nmsi.start(
                    settings.boss.nmsi_host, settings.boss.nmsi_port
                )
                log.info("NMSI on %s:%d", *services.nmsi_address)
            if on_ready is not None:
                on_ready()
            if freezer is not None:
                freezer.start()
            for board in console_boards:
                board.start()
            log.info(
                "lwork ready: database %s, relay ng %s:%d, %s",
                engine.url.render_as_string(),
                *relay.ng.address[:2],
                passwords.parameters,
            )
            try:
                yield {EDGE: edge}
            finally:
                for board in console_boards:
                    await board.close()
                if freezer is not None:
                    await freezer.close()
                if nmsi is not None:
                    await nmsi.close()
                await payments.reconciler.close()
                if webhook is not None:
                    await webhook.close()
                await sweep.close()
                await router.close()
                await keeper.close()
                await calls.close()
                if trunk is not None:
                    await trunk.close()
                await push.close()
                await upkeep.close()
                await mailbox.close()
                await units.close()
                if hot_path is not None:
                    await hot_path.close()
                if limits is not None:
                    await limits.close()
                await bus.close()
                await http2_client.aclose()
                await http_client.aclose()
                passwords.close()
                await engine.dispose()

    services = Services(
        engine=engine,
        accounts=accounts,
        account_store=store,
        versions=versions,
        passwords=passwords,
        push=push,
        polls=registry,
        mailbox=mailbox,
        billing=billing,
        fraud=fraud,
        records=records,
        keeper=keeper,
        provisioning=provisioning,
        payments=payments,
        operators=operators,
        telemetry=telemetry,
    )
    app = build_starlette_composed(lifespan)
    # Beside the mobile API's edge: provider notifications need their raw bytes and answer in
    # the provider's own way; the BOSS has its own door (CONTRACT §9), before the catch-all.
    app.direct |= notify_endpoints(payments, settings.http.body_limit)
    app.router.routes[:0] = [
        boss_route(settings, engine, provisioning, billing, accounts, clock.wall, payments),
    ]
    if settings.admin.enabled:
        # Served by Starlette like the BOSS's door: the edge's fast path never sees /admin.
        with limiter_factory(limits):  # its sign-in limits, for the whole machine
            console = console_mount(
                settings, engine, operators,
                lambda: services.call_side.calls if services.call_side else None, billing,
                accounts, clock, provisioning=provisioning, payments=payments,
                versions=versions, fraud=fraud.store, server_secret=server_secret(settings),
                router=router, worker=worker,
            )  # fmt: skip
        app.router.routes[:0] = console.routes
        console_boards.extend([console.board] if console.board else [])
    return app, services
