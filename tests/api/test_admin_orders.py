"""The console's orders page through real HTTP: filters, pages newest first, escaping, bad
filters answered 400 naming the field."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from typing import Any

from lwork.storage.tables import orders

from fakes.operator_browser import PASSWORD, browser, sign_in

Factory = Callable[..., Any]
ALICE, BOB = "13800000001", "13900000002"
FIRST = dt.datetime(2026, 3, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
STATES = ("created", "paid", "closed", "refunded", "flagged")
SCRIPT = "<script>alert(1)</script>"


def order(n: int) -> dict[str, Any]:
    at = FIRST + 300 * n  # 288 a day
    return {
        "payid": f"{n:024d}", "uuid": ALICE if n % 2 else BOB, "uuid_raw": "x",
        "product_id": "coins_300", "pay_type": "alipay" if n % 3 else "wechat", "money": 3000,
        "coins": 30000, "minutes": 0, "state": STATES[n % 5], "trade_no": f"T{n}",
        "note": SCRIPT if n == 4 else None, "created_at": at, "expires_at": at + 900,
        "paid_at": at + 60 if n % 5 == 1 else None, "updated_at": at,
    }  # fmt: skip


async def test_orders_are_filtered_and_paged(server_factory: Factory) -> None:
    async with (
        server_factory(billing={"timezone": "Asia/Shanghai"}) as server,
        browser(server.url) as client,
    ):
        async with server.services.engine.begin() as conn:
            await conn.execute(orders.insert(), [order(n) for n in range(400)])
        assert (await client.get("/admin/orders")).status_code == 303
        await server.services.operators.add("sam", "support", PASSWORD, time.time())
        assert (await sign_in(client, "sam")).status_code == 303

        day = [order(n) for n in range(288)]  # 1 March in Shanghai
        seen: list[str] = []
        url = "/admin/orders?from=2026-03-01&to=2026-03-01"
        while url:
            page = await client.get(url)
            assert page.status_code == 200
            seen += re.findall(r'<tr data-id="([^"]+)">', page.text)
            found = re.search(r'id="next-page" href="([^"]+)"', page.text)
            url = found.group(1).replace("&amp;", "&") if found else ""
        assert seen == [o["payid"] for o in reversed(day)]

        params = {"from": "2026-03-01", "to": "2026-03-01", "account": ALICE, "state": "paid",
                  "pay_type": "alipay"}  # fmt: skip
        page = await client.get("/admin/orders", params=params)
        wanted = [
            o["payid"] for o in reversed(day)
            if o["uuid"] == ALICE and o["state"] == "paid" and o["pay_type"] == "alipay"
        ]  # fmt: skip
        assert re.findall(r'<tr data-id="([^"]+)">', page.text) == wanted and wanted
        assert "*******0001" in page.text

        flagged = {"from": "2026-03-01", "to": "2026-03-01", "state": "flagged", "account": BOB}
        page = await client.get("/admin/orders", params=flagged)
        assert f'data-id="{order(4)["payid"]}"' in page.text  # the order with the script note
        assert SCRIPT not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        for params, field in (({"state": SCRIPT}, "state"), ({"pay_type": "cash"}, "pay_type"),
                              ({"to": "2026-3-1"}, "to"), ({"account": "abc"}, "account"),
                              ({"before": "1~"}, "before")):  # fmt: skip
            page = await client.get("/admin/orders", params=params)
            assert page.status_code == 400 and f"{field}:" in page.text, params
            assert SCRIPT not in page.text
