"""The console's account page through real HTTP: an account registered by a simulated app
(its device, its welcome coins), its records and orders; what the app typed comes back
escaped; unknown accounts and no session get clear answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from lwork.sim.phone import SimPhone
from lwork.storage.tables import cdrs, orders

from fakes.operator_browser import PASSWORD, browser, sign_in

Factory = Callable[..., Any]
ALICE = "13800000001"
APP_PASSWORD = "e10adc3949ba59abbe56e057f20f883e"
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


async def test_an_account_at_a_glance(server_factory: Factory) -> None:
    async with server_factory() as server, browser(server.url) as client:
        async with SimPhone(server.url, ALICE, "dev-" + SCRIPT, lambda line: None) as phone:
            await phone.request_code()
            await phone.register(server.gateway.last_code(ALICE), APP_PASSWORD, name=SCRIPT)
            await phone.login(APP_PASSWORD)
        now = time.time()
        async with server.services.engine.begin() as conn:
            await conn.execute(cdrs.insert().values(
                id="n1@@" + "a" * 32, uuid=ALICE, kind="out", caller=ALICE, callee="02079460000",
                started_at=now - 60, answered_at=now - 58, ended_at=now - 30, billsec=28,
                minutes=1, cost=0, end_reason="hangup_caller",
            ))  # fmt: skip
            await conn.execute(orders.insert().values(
                payid="p" * 24, uuid=ALICE, uuid_raw=ALICE, product_id="coins_300",
                pay_type="test", money=3000, coins=30000, minutes=0, state="flagged",
                note=SCRIPT, created_at=now, expires_at=now + 900, updated_at=now,
            ))  # fmt: skip

        r = await client.get("/admin/accounts", params={"account": ALICE})
        assert r.status_code == 303  # no session
        await server.services.operators.add("sam", "support", PASSWORD, time.time())
        assert (await sign_in(client, "sam")).status_code == 303

        page = await client.get("/admin/accounts", params={"account": ALICE})
        assert page.status_code == 200
        # masked everywhere but in the search box, where the operator typed it
        assert "*******0001" in page.text and page.text.count(ALICE) == 1
        assert f'value="{ALICE}"' in page.text
        assert SCRIPT not in page.text and page.text.count(ESCAPED) == 3  # name, device, note
        assert "赠送金币: 300" in page.text  # the welcome gift of the test settings
        assert "dev-" in page.text and "android" in page.text  # the device that logged in
        assert 'data-id="n1@@' + "a" * 32 in page.text and "hangup_caller" in page.text
        assert "p" * 24 in page.text and "30.00" in page.text and "flagged" in page.text

        page = await client.get("/admin/accounts")
        assert page.status_code == 200 and "账号查询" in page.text
        for unknown in ("19900000000", SCRIPT, "x" * 500):
            page = await client.get("/admin/accounts", params={"account": unknown})
            assert page.status_code == 404 and "账号不存在" in page.text
            assert SCRIPT not in page.text


async def test_who_is_online(server_factory: Factory) -> None:
    async with server_factory() as server, browser(server.url) as client:
        await server.services.operators.add("sam", "support", PASSWORD, time.time())
        assert (await client.get("/admin/online")).status_code == 303
        assert (await sign_in(client, "sam")).status_code == 303
        async with (
            SimPhone(server.url, ALICE, "alice-" + SCRIPT, lambda line: None) as alice,
            SimPhone(server.url, "13900000002", "bob-phone", lambda line: None) as bob,
        ):
            for phone in (alice, bob):
                await phone.request_code()
                await phone.register(server.gateway.last_code(phone.phone), APP_PASSWORD)
                await phone.login(APP_PASSWORD)
            await alice.poll()  # bob's app never polls: not online
            for _ in range(50):  # poll times reach the database in batches
                page = await client.get("/admin/online")
                if "*******0001" in page.text:
                    break
                await asyncio.sleep(0.1)
        assert page.status_code == 200 and "当前在线: <b>1</b>" in page.text
        assert "*******0001" in page.text and "*******0002" not in page.text
        assert SCRIPT not in page.text and "alice-&lt;script&gt;" in page.text
