"""Refunding an order from the console's orders page, through real HTTP: an order paid through
the ``test`` provider (a signed notification) is refunded by an administrator, its coins taken
back once; refusals (unknown order, not paid, bad amount, no reason) are named on the page;
CSRF and the support role are refused; each is one audit row; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
from test_payments import FREE_ACCOUNTS, PHONE, TEST_PAY, coins, login, notify, order

from lwork.boss.audit import AuditTrail

from conftest import LiveServer
from fakes.operator_browser import PASSWORD, browser, csrf_of, sign_in

Factory = Callable[..., Any]
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


async def paid_order(server: LiveServer, auth: dict[str, str], trade_no: str) -> str:
    payid: str = (await order(server, auth, money=30, coins=300))["payid"]
    r = await notify(server, {"payid": payid, "money": "30.00", "trade_no": trade_no})
    assert (r.status_code, r.text) == (200, "success")
    return payid


async def refund(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    page = await client.get("/admin/orders")
    assert page.status_code == 200
    back = re.search(r'name="back" value="([^"]*)"', page.text)
    data = {"csrf": csrf_of(page), "back": back.group(1).replace("&amp;", "&") if back else ""}
    return await client.post("/admin/orders/refund", data={**data, **fields})


async def test_an_administrator_refunds_an_order(server_factory: Factory) -> None:
    async with (
        server_factory(payments=TEST_PAY, billing=FREE_ACCOUNTS) as server,
        browser(server.url) as client,
    ):
        auth = await login(server)
        whole = await paid_order(server, auth, "T-1")
        part = await paid_order(server, auth, "T-2")
        assert await coins(server, auth) == 600
        await server.services.operators.add("root", "admin", PASSWORD, time.time())
        assert (await sign_in(client, "root")).status_code == 303
        page = await client.get("/admin/orders")
        assert page.text.count('action="/admin/orders/refund"') == 2  # one per paid order

        r = await refund(client, payid=whole, reason="customer asked " + SCRIPT)
        assert r.status_code == 303 and "done=refunded" in r.headers["location"]
        page = await client.get(r.headers["location"])
        assert f"已退款：订单 {whole}" in page.text
        assert re.search(rf'data-id="{whole}">.*?<td>refunded</td>', page.text, re.S)
        assert SCRIPT not in page.text and ESCAPED in page.text  # the note names the reason
        assert await coins(server, auth) == 300  # its coins taken back
        # asked again: nothing more is taken
        r = await refund(client, payid=whole, reason="again")
        assert r.status_code in (303, 409)
        assert await coins(server, auth) == 300

        r = await refund(client, payid=part, money="10", reason="partial")
        assert r.status_code == 303
        assert await coins(server, auth) == 200  # a third of the price: a third of its coins

        for fields, status, shown in (
            ({"payid": "0" * 24, "reason": "x"}, 404, "unknown_payid"),
            ({"payid": whole, "reason": ""}, 400, "reason:"),
            ({"payid": part, "money": "-1", "reason": "x"}, 400, "money:"),
            ({"payid": part, "money": "1.234", "reason": "x"}, 400, "money:"),
            ({"payid": SCRIPT, "reason": "x"}, 400, "payid:"),
        ):  # fmt: skip
            r = await refund(client, **fields)
            assert r.status_code == status and shown in r.text, fields
            assert SCRIPT not in r.text
        assert await coins(server, auth) == 200

        audit = await client.get("/admin/audit")
        assert SCRIPT not in audit.text and ESCAPED in audit.text
        trail = await AuditTrail(server.services.engine).entries()
        assert [e.account for e in trail if e.action == "refund"][:2] == [PHONE, PHONE]
        entries = [(e.actor, e.action, e.result) for e in trail]
        refunds = [e for e in entries if e[1] == "refund"]
        assert refunds[0] == ("console:root", "refund", "ok") and len(refunds) == 8
        assert ("console:root", "refund", "unknown_payid") in refunds
        assert refunds.count(("console:root", "refund", "invalid_params")) == 4


async def test_refunds_need_csrf_and_an_administrator(server_factory: Factory) -> None:
    async with (
        server_factory(payments=TEST_PAY, billing=FREE_ACCOUNTS) as server,
        browser(server.url) as client,
    ):
        auth = await login(server)
        payid = await paid_order(server, auth, "T-1")
        await server.services.operators.add("sam", "support", PASSWORD, time.time())
        await server.services.operators.add("root", "admin", PASSWORD, time.time())
        r = await client.post("/admin/orders/refund", data={"payid": payid, "reason": "x"})
        assert r.status_code == 403  # nobody signed in
        assert (await sign_in(client, "sam")).status_code == 303
        page = await client.get("/admin/orders")
        assert payid in page.text and "/admin/orders/refund" not in page.text
        data = {"csrf": csrf_of(page), "payid": payid, "reason": "x"}
        r = await client.post("/admin/orders/refund", data=data)
        assert r.status_code == 403 and "只能查看" in r.text
        async with browser(server.url) as admin:
            assert (await sign_in(admin, "root")).status_code == 303
            for forged in ("", "f" * 64, csrf_of(page)):
                data = {"csrf": forged, "payid": payid, "reason": "x"}
                r = await admin.post("/admin/orders/refund", data=data)
                assert r.status_code == 403 and "表单已失效" in r.text
        assert await coins(server, auth) == 300
        entries = [(e.actor, e.action, e.result, e.detail.get("payid")) for e in
                   await AuditTrail(server.services.engine).entries()]  # fmt: skip
        assert ("console:sam", "refund", "forbidden", payid) in entries
        assert ("console:-", "refund", "forbidden", payid) in entries
        assert entries.count(("console:root", "refund", "forbidden", payid)) == 3
