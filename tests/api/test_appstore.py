"""The App Store through real HTTP (CONTRACT §8): the app posts its StoreKit 2 signed
transaction to ``pay/apple`` and its order is credited once; transactions that do not chain to
the configured root, are expired, unmarked, for another app, environment, product or price, or
already used (even by a racing post to another order), or carry a certificate that does not
parse, credit nothing; an App Store Server Notification V2 ``REFUND`` takes the credit back
from the order its transaction paid, once."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError
from test_alipay import PHONE, coins, login, state
from test_alipay_reconcile_refund import age

from lwork.billing.ledger import LedgerStore
from lwork.payments.orders import OrderStore
from lwork.payments.provider import Notice
from lwork.payments.settlement import Settled
from lwork.settings.sections import BillingSettings
from lwork.storage.engine import create_engine

from conftest import LiveServer
from fakes.appstore import BUNDLE_ID, Chain, FakeAppStore

NOTIFY = "/lwork/pay/notify/apple"
OTHER = "13900139000"


@dataclass
class World:
    server: LiveServer
    store: FakeAppStore
    auth: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    """The appAccountToken get_payid gave with each payid."""

    async def open_order(self, product_id: str = "coins_300", apple_id: str | None = None) -> str:
        body = {"uuid": PHONE, "device_id": "d", "product_id": product_id, "pay_type": "apple"}
        answer = (await self.server.post("/lwork/mobile/get_payid", body, headers=self.auth)).json()
        assert answer["status"] == "ok" and answer["apple_product_id"] == (apple_id or product_id)
        self.tokens[answer["payid"]] = str(uuid.UUID(answer["app_account_token"]))
        return str(answer["payid"])

    async def pay(
        self, payid: str, signed: str, phone: str = PHONE, auth: dict[str, str] | None = None
    ) -> Any:
        body = {"uuid": phone, "device_id": "d", "payid": payid, "signed_transaction": signed}
        r = await self.server.post("/lwork/mobile/pay/apple", body, headers=auth or self.auth)
        return r.json()


@contextlib.asynccontextmanager
async def started(server_factory: Callable[..., Any], **billing: Any) -> AsyncIterator[World]:
    store = FakeAppStore()
    apple = {"enabled": True, "bundle_id": BUNDLE_ID, "environment": "Sandbox",
             "root_certificates": [store.chain.root_pem()]}  # fmt: skip
    async with server_factory(payments={"apple": apple},
                              billing={"signup_gift_coins": 0, **billing}) as server:  # fmt: skip
        yield World(server, store, await login(server))


@pytest.fixture
async def world(server_factory: Callable[..., Any]) -> AsyncIterator[World]:
    async with started(server_factory) as w:
        yield w


async def test_a_purchase_credits_its_order_once(world: World) -> None:
    w = world
    payid = await w.open_order()
    signed = w.store.chain.sign(w.store.transaction("coins_300"))
    assert await w.pay(payid, signed) == {"status": "ok", "coins": 300}
    assert await w.pay(payid, signed) == {"status": "ok", "coins": 300}  # the app retries
    assert await coins(w.server, w.auth) == 300
    assert (await state(w.server, payid))[0] == "paid"


async def test_one_transaction_cannot_pay_two_orders(world: World) -> None:
    w = world
    first, second = await w.open_order(), await w.open_order()
    signed = w.store.chain.sign(w.store.transaction("coins_300"))
    assert (await w.pay(first, signed))["status"] == "ok"
    assert await w.pay(second, signed) == {"status": "failed", "reason": "duplicated_payid"}
    assert await coins(w.server, w.auth) == 300
    other = w.store.chain.sign(w.store.transaction("coins_300"))  # a second purchase, later
    assert await w.pay(first, other) == {"status": "failed", "reason": "duplicated_payid"}
    assert await coins(w.server, w.auth) == 300


async def test_unbelievable_transactions_credit_nothing(world: World) -> None:
    w = world
    payid = await w.open_order()
    chain = w.store.chain
    good = w.store.transaction("coins_300")
    stranger = Chain.new()  # a chain of its own, not under the configured root
    expired = Chain.new(leaf_days=-0.5)
    unmarked = Chain.new(markers=False)
    header, body, sig = chain.sign(good).split(".")
    _, other_body, _ = chain.sign({**good, "productId": "coins_1000"}).split(".")
    cases = {
        "another root": stranger.sign(good),
        "an expired leaf": expired.sign(good, x5c=[expired.leaf, expired.intermediate, chain.root]),
        "no Apple markers": unmarked.sign(good),
        "a leaf chained to our root by a stranger": chain.sign(
            good, x5c=[stranger.leaf, chain.intermediate, chain.root], key=stranger.key),
        "signed by another key": chain.sign(good, key=stranger.key),
        "a swapped payload": f"{header}.{other_body}.{sig}",
        "alg none": chain.sign(good, alg="none"),
        "not a JWS": "not.a.jws",
        "garbage": "x" * 300,
        "another app": chain.sign({**good, "bundleId": "com.example.other"}),
        "production": chain.sign({**good, "environment": "Production"}),
    }  # fmt: skip
    for why, signed in cases.items():
        assert await w.pay(payid, signed) == {"status": "failed", "reason": "invalid_receipt"}, why
    for wrong in ({"productId": "coins_1000"}, {"price": 10000}):
        signed = chain.sign({**good, **wrong})
        assert await w.pay(payid, signed) == {"status": "failed", "reason": "money_not_matched"}
    assert await coins(w.server, w.auth) == 0
    assert await state(w.server, payid) == ("created", None)


async def test_a_refund_notification_takes_the_coins_back_once(world: World) -> None:
    w = world
    payid = await w.open_order()
    transaction = w.store.transaction("coins_300")
    assert (await w.pay(payid, w.store.chain.sign(transaction)))["status"] == "ok"
    refund = w.store.notification("REFUND", transaction)
    for _ in range(2):  # Apple may send it again: taken back once
        r = await w.store.post(w.server.url + NOTIFY, refund)
        assert r.status_code == 200
    assert await coins(w.server, w.auth) == 0
    assert (await state(w.server, payid))[0] == "refunded"
    other = w.store.notification("CONSUMPTION_REQUEST", transaction)
    assert (await w.store.post(w.server.url + NOTIFY, other)).status_code == 200
    unknown = w.store.notification("REFUND", w.store.transaction("coins_300"))
    assert (await w.store.post(w.server.url + NOTIFY, unknown)).status_code == 200


async def test_forged_notifications_are_refused(world: World) -> None:
    w = world
    payid = await w.open_order()
    transaction = w.store.transaction("coins_300")
    assert (await w.pay(payid, w.store.chain.sign(transaction)))["status"] == "ok"
    stranger = FakeAppStore(chain=Chain.new())
    for body in (
        stranger.notification("REFUND", transaction),
        w.store.notification("REFUND", transaction, bundleId="com.example.other"),
        w.store.notification("REFUND", transaction, environment="Production"),
        b'{"signedPayload": "x.y.z"}',
        b"not json",
    ):
        w.store.attempts.clear()
        r = await w.store.post(w.server.url + NOTIFY, body)
        assert r.status_code == 400 and len(w.store.attempts) == 3
    assert await coins(w.server, w.auth) == 300


@contextlib.asynccontextmanager
async def ledger_held(server: LiveServer) -> AsyncIterator[Callable[[int], Awaitable[None]]]:
    """On PostgreSQL, another client holds the ledger against writes while the block runs, so
    that racing settlements all read it before any writes (the race made certain); ``waiting(n)``
    returns once ``n`` of them are queued on that lock. On SQLite, writers are one at a time."""
    url = server.settings.database_url
    if not url.startswith("postgresql"):

        async def nobody(n: int) -> None:
            return None

        yield nobody
        return
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    holding = conn.transaction()
    await holding.start()
    await conn.execute("LOCK TABLE ledger IN EXCLUSIVE MODE")  # reads pass, writes queue

    async def waiting(n: int) -> None:
        query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'ledger'::regclass"
        for _ in range(1000):
            if await conn.fetchval(query) >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{n} writers never queued on the ledger")

    try:
        yield waiting
    finally:
        await holding.commit()
        await conn.close()


async def test_one_transaction_raced_onto_two_orders_credits_one(world: World) -> None:
    """The app posts one transaction for one order while another node settles it for another
    (on PostgreSQL both read the ledger before either writes: the race made certain). One
    order is credited, the other flagged, whichever wins; no error. Within one node the two
    cannot race: its settlements are written one batch after another."""
    w = world
    first, second = await w.open_order(), await w.open_order()
    transaction = w.store.transaction("coins_300")
    signed = w.store.chain.sign(transaction)
    other_node = create_engine(w.server.settings.database_url, 2)
    orders_there = OrderStore(other_node, LedgerStore(other_node))
    notice = Notice(second, str(transaction["transactionId"]), 3000, "paid")
    try:
        async with ledger_held(w.server) as waiting:
            racing = asyncio.gather(
                w.pay(first, signed), orders_there.settle("apple", notice, time.time())
            )
            await waiting(2)
        posted, settled_there = await racing
    finally:
        await other_node.dispose()
    assert await coins(w.server, w.auth) == 300
    states = ((await state(w.server, first))[0], (await state(w.server, second))[0])
    if settled_there is Settled.CREDITED:
        assert states == ("flagged", "paid")
        assert posted == {"status": "failed", "reason": "duplicated_payid"}
    else:
        assert (settled_there, states) == (Settled.FLAGGED, ("paid", "flagged"))
        assert posted == {"status": "ok", "coins": 300}


async def test_a_refund_finds_the_order_its_transaction_paid_not_one_it_flagged(
    world: World,
) -> None:
    w = world
    flagged = await w.open_order()  # opened first: the older row, found first by a bare lookup
    paid = await w.open_order()
    transaction = w.store.transaction("coins_300")
    signed = w.store.chain.sign(transaction)
    assert (await w.pay(paid, signed))["status"] == "ok"
    assert (await w.pay(flagged, signed))["reason"] == "duplicated_payid"
    assert (await w.pay(paid, signed))["status"] == "ok"  # the app retries: the paid row moves
    assert (await state(w.server, flagged))[0] == "flagged"
    r = await w.store.post(w.server.url + NOTIFY, w.store.notification("REFUND", transaction))
    assert r.status_code == 200
    assert await coins(w.server, w.auth) == 0
    assert (await state(w.server, paid))[0] == "refunded"
    assert (await state(w.server, flagged))[0] == "flagged"


async def test_a_certificate_that_does_not_parse_is_refused_not_an_error(world: World) -> None:
    w = world
    payid = await w.open_order()
    chain, good = w.store.chain, w.store.transaction("coins_300")
    broken = Chain.new(broken_extension=True)  # signs well; its BasicConstraints is garbage
    ours = w.store.chain.issue_leaf(broken_extension=True)  # the same, issued by our intermediate
    cases = {
        "a stranger's broken intermediate": chain.sign(
            good, x5c=[broken.leaf, broken.intermediate, chain.root], key=broken.key),
        "a broken leaf our intermediate signed": chain.sign(
            good, x5c=[ours.leaf, chain.intermediate, chain.root], key=ours.key),
    }  # fmt: skip
    for why, signed in cases.items():
        answer = await w.pay(payid, signed)
        assert answer == {"status": "failed", "reason": "invalid_receipt"}, why
    notice = w.store.notification("REFUND", good)
    body = json.loads(notice)
    payload = body["signedPayload"].split(".")[1]
    body["signedPayload"] = chain.sign(json.loads(_unb64(payload)),
                                       x5c=[ours.leaf, chain.intermediate, chain.root],
                                       key=ours.key)  # fmt: skip
    r = await w.store.post(w.server.url + NOTIFY, json.dumps(body).encode(), tries=1)
    assert r.status_code == 400
    assert await coins(w.server, w.auth) == 0
    assert await state(w.server, payid) == ("created", None)


async def test_reconciliation_does_not_ask_the_app_store_and_expires_unpaid_orders(
    world: World,
) -> None:
    w = world
    payid = await w.open_order()
    reconciler = w.server.services.payments.reconciler
    await age(w.server, payid, 601)
    assert dict(await reconciler.round()) == {"waiting": 1}
    await age(w.server, payid, 1800)
    assert dict(await reconciler.round()) == {"expired": 1}
    assert await state(w.server, payid) == ("closed", "expired")


async def test_a_purchase_delivered_after_its_order_expired_is_credited_once(world: World) -> None:
    w = world
    late = await w.open_order()
    await age(w.server, late, 3600)  # the app crashed mid-purchase; StoreKit delivers it later
    assert dict(await w.server.services.payments.reconciler.round()) == {"expired": 1}
    assert await state(w.server, late) == ("closed", "expired")
    transaction = w.store.transaction("coins_300")
    for _ in range(2):  # and the app posts it again
        assert await w.pay(late, w.store.chain.sign(transaction)) == {"status": "ok", "coins": 300}
    assert await coins(w.server, w.auth) == 300
    assert (await state(w.server, late))[0] == "paid"
    # An order closed by the opening of another (its expired ones close) reopens alike, but a
    # transaction credits once: posted to a second expired order, it is a duplicate.
    other = await w.open_order()
    await age(w.server, other, 3600)
    await w.open_order()
    assert await state(w.server, other) == ("closed", "expired")
    signed = w.store.chain.sign(transaction)
    assert await w.pay(other, signed) == {"status": "failed", "reason": "duplicated_payid"}
    fresh = w.store.transaction("coins_300")
    assert (await w.pay(other, w.store.chain.sign(fresh)))["status"] == "failed"  # flagged now
    assert await coins(w.server, w.auth) == 300


APPLE_CATALOGUE = [
    {"id": "coins_300", "money": "30.00", "coins": "300",
     "apple_product_id": "com.example.lwork.coins300"},
    {"id": "coins_100", "money": "10.00", "coins": "100"},
]  # fmt: skip


async def test_the_catalogues_apple_product_id_is_what_a_transaction_must_name(
    server_factory: Callable[..., Any],
) -> None:
    async with started(server_factory, products=APPLE_CATALOGUE) as w:
        payid = await w.open_order("coins_300", apple_id="com.example.lwork.coins300")
        derived = w.store.chain.sign(w.store.transaction("coins_300"))
        assert await w.pay(payid, derived) == {"status": "failed", "reason": "money_not_matched"}
        named = w.store.chain.sign(w.store.transaction("com.example.lwork.coins300"))
        assert await w.pay(payid, named) == {"status": "ok", "coins": 300}
        plain = await w.open_order("coins_100")  # none named: the catalogue id
        signed = w.store.chain.sign(w.store.transaction("coins_100", price=10000))
        assert await w.pay(plain, signed) == {"status": "ok", "coins": 100}
        assert await coins(w.server, w.auth) == 400


def test_an_app_store_id_naming_two_products_is_refused() -> None:
    twice = [*APPLE_CATALOGUE, {"id": "coins_301", "money": "30.00", "coins": "301",
                                "apple_product_id": "com.example.lwork.coins300"}]  # fmt: skip
    with pytest.raises(ValidationError, match="names two products"):
        BillingSettings(products=twice)
    clash = [*APPLE_CATALOGUE, {"id": "com.example.lwork.coins300", "money": "1", "coins": "1"}]
    with pytest.raises(ValidationError, match="names two products"):
        BillingSettings(products=clash)


async def test_a_transaction_bought_with_its_orders_token_credits_that_order(world: World) -> None:
    w = world
    bought_for, posted_with = await w.open_order(), await w.open_order()
    transaction = w.store.transaction("coins_300", appAccountToken=w.tokens[bought_for])
    signed = w.store.chain.sign(transaction)
    # The app lost track of which payid it bought for: the token says it.
    assert await w.pay(posted_with, signed) == {"status": "ok", "coins": 300}
    assert (await state(w.server, bought_for))[0] == "paid"
    assert await state(w.server, posted_with) == ("created", None)
    assert await w.pay(bought_for, signed) == {"status": "ok", "coins": 300}
    assert await coins(w.server, w.auth) == 300


async def test_a_token_naming_another_accounts_order_or_none_is_refused(world: World) -> None:
    w = world
    mine = await w.open_order()
    theirs_auth = await login(w.server, OTHER)
    body = {"uuid": OTHER, "device_id": "d", "product_id": "coins_300", "pay_type": "apple"}
    answer = (await w.server.post("/lwork/mobile/get_payid", body, headers=theirs_auth)).json()
    theirs, their_token = answer["payid"], answer["app_account_token"]
    refused = {"status": "failed", "reason": "invalid_receipt"}
    stolen = w.store.chain.sign(w.store.transaction("coins_300", appAccountToken=their_token))
    assert await w.pay(mine, stolen) == refused  # posted by me, bought for their order
    nobody = w.store.chain.sign(w.store.transaction("coins_300", appAccountToken=str(uuid.uuid4())))
    assert await w.pay(mine, nobody) == refused
    garbage = w.store.chain.sign(w.store.transaction("coins_300", appAccountToken="not-a-uuid"))
    assert await w.pay(mine, garbage) == refused
    assert await coins(w.server, w.auth) == 0
    assert await coins(w.server, theirs_auth, OTHER) == 0
    assert await state(w.server, mine) == ("created", None)
    assert await state(w.server, theirs) == ("created", None)
    # Their own post of it credits them.
    assert await w.pay(theirs, stolen, OTHER, theirs_auth) == {"status": "ok", "coins": 300}
    assert await coins(w.server, theirs_auth, OTHER) == 300


async def test_a_one_time_charge_notification_credits_the_tokens_order_once(world: World) -> None:
    w = world
    payid = await w.open_order()
    transaction = w.store.transaction("coins_300", appAccountToken=w.tokens[payid])
    charge = w.store.notification("ONE_TIME_CHARGE", transaction)
    for _ in range(2):  # sent again: credited once
        assert (await w.store.post(w.server.url + NOTIFY, charge)).status_code == 200
    assert await coins(w.server, w.auth) == 300
    assert (await state(w.server, payid))[0] == "paid"
    # The app posts it afterwards, as it does every purchase: the same answer, no more coins.
    assert await w.pay(payid, w.store.chain.sign(transaction)) == {"status": "ok", "coins": 300}
    assert await coins(w.server, w.auth) == 300
    # Without a token (or for another product) nothing is credited; Apple is answered 200.
    other = await w.open_order()
    untokened = w.store.transaction("coins_300")
    wrong = w.store.transaction("coins_1000", appAccountToken=w.tokens[other])
    for t in (untokened, wrong):
        r = await w.store.post(w.server.url + NOTIFY, w.store.notification("ONE_TIME_CHARGE", t))
        assert r.status_code == 200
    assert await state(w.server, other) == ("created", None)
    assert await coins(w.server, w.auth) == 300


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
