"""The console's call records through real HTTP: filters, pages, the streamed CSV export,
escaping, and bad filters answered 400 with the field named."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from collections.abc import Callable
from typing import Any

from lwork.boss.audit import AuditTrail
from lwork.storage.tables import cdrs

from fakes.operator_browser import PASSWORD, browser, sign_in

Factory = Callable[..., Any]
ALICE, BOB, CAROL = "13800000001", "13900000002", "02079460000"
ROWS = 1200
# 1 March 2026 00:00 in Shanghai; a record every 100 s spans about 33 hours
FIRST = dt.datetime(2026, 3, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
KINDS = ("out", "p2p", "in", "callback_local")
SCRIPT = "<script>alert(1)</script>"
SHANGHAI = {"billing": {"timezone": "Asia/Shanghai"}}


def record(n: int) -> dict[str, Any]:
    start = FIRST + 100 * n
    answered = n % 3 != 0
    return {
        "id": f"n1@@{n:032x}", "uuid": ALICE if n % 2 else BOB, "kind": KINDS[n % 4],
        "caller": ALICE if n % 2 else BOB, "callee": CAROL if n % 5 else BOB,
        "caller_id": None, "started_at": start, "answered_at": start + 2 if answered else None,
        "ended_at": start + 30, "billsec": 28 if answered else 0, "minutes": 1, "cost": 0,
        "end_reason": SCRIPT if n == 7 else "hangup_caller" if answered else "no_answer",
        "mos": 4.2 if answered else None, "loss": 0.01 if answered else None, "node": "n1",
    }  # fmt: skip


def ids_on(page: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)">', page)


async def test_records_are_filtered_paged_and_exported(server_factory: Factory) -> None:
    async with server_factory(**SHANGHAI) as server, browser(server.url) as client:
        async with server.services.engine.begin() as conn:
            await conn.execute(cdrs.insert(), [record(n) for n in range(ROWS)])
        await server.services.operators.add("sam", "support", PASSWORD, time.time())
        r = await client.get("/admin/cdrs")
        assert (r.status_code, r.headers["location"]) == (303, "/admin/sign-in?next=/admin/cdrs")
        assert (await client.get("/admin/cdrs.csv")).status_code == 303
        assert (await sign_in(client, "sam")).status_code == 303  # read-only may read

        # 1 March in Shanghai, every page newest first, 50 a page, no record twice
        day = [record(n) for n in range(ROWS) if record(n)["started_at"] < FIRST + 86400]
        seen: list[str] = []
        url = "/admin/cdrs?from=2026-03-01&to=2026-03-01"
        while url:
            page = await client.get(url)
            assert page.status_code == 200
            rows = ids_on(page.text)
            assert 0 < len(rows) <= 50
            seen += rows
            found = re.search(r'id="next-page" href="([^"]+)"', page.text)
            url = found.group(1).replace("&amp;", "&") if found else ""
        assert seen == [r["id"] for r in reversed(day)]
        assert ALICE not in page.text and "*******0001" in page.text  # masked as in the logs

        filters: list[tuple[dict[str, str], Callable[[dict[str, Any]], bool]]] = [
            ({"account": ALICE}, lambda r: r["uuid"] == ALICE),
            ({"number": BOB}, lambda r: BOB in (r["caller"], r["callee"])),
            ({"kind": "in"}, lambda r: r["kind"] == "in"),
            ({"end_reason": "no_answer"}, lambda r: r["end_reason"] == "no_answer"),
            ({"kind": "p2p", "account": BOB}, lambda r: r["kind"] == "p2p" and r["uuid"] == BOB),
        ]
        for params, wanted in filters:
            page = await client.get(
                "/admin/cdrs", params={"from": "2026-03-01", "to": "2026-03-01", **params}
            )
            expected = [r["id"] for r in reversed(day) if wanted(r)][:50]
            assert ids_on(page.text) == expected, params

        # the export: the filter's records, oldest first, streamed in batches
        params = {"from": "2026-03-01", "to": "2026-03-02", "account": ALICE}
        chunks = []
        async with client.stream("GET", "/admin/cdrs.csv", params=params) as export:
            assert export.status_code == 200
            assert export.headers["content-type"].startswith("text/csv")
            assert "content-length" not in export.headers  # not built whole first
            assert "attachment" in export.headers["content-disposition"]
            async for chunk in export.aiter_raw():
                chunks.append(chunk)
        table = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
        assert [row["id"] for row in table] == [r["id"] for r in map(record, range(ROWS))
                                                 if r["uuid"] == ALICE]  # fmt: skip
        assert len(table) == ROWS // 2 and len(chunks) >= 2
        assert table[0]["account"] == "*******0001" and table[0]["start"].endswith("+08:00")
        entries = await AuditTrail(server.services.engine).entries()
        assert [(e.actor, e.action) for e in entries][-1] == ("console:sam", "cdr_export")


async def test_bad_filters_and_injected_text(server_factory: Factory) -> None:
    async with server_factory(**SHANGHAI) as server, browser(server.url) as client:
        async with server.services.engine.begin() as conn:
            await conn.execute(cdrs.insert(), [record(n) for n in range(10)])
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        assert (await sign_in(client, "alice")).status_code == 303
        page = await client.get("/admin/cdrs", params={"from": "2026-03-01", "to": "2026-03-01"})
        assert SCRIPT not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        for params, field in (
            ({"from": "2026-02-30"}, "from"), ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),
            ({"kind": SCRIPT}, "kind"), ({"account": SCRIPT}, "account"),
            ({"number": "13800000001' OR 1=1 --"}, "number"),
            ({"end_reason": SCRIPT}, "end_reason"),
            ({"before": SCRIPT}, "before"), ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
        ):  # fmt: skip
            page = await client.get("/admin/cdrs", params=params)
            assert page.status_code == 400, params
            assert f"{field}:" in page.text and SCRIPT not in page.text
            export = await client.get("/admin/cdrs.csv", params=params)
            assert export.status_code == 400 and export.text.startswith(f"{field}:")
        page = await client.get("/admin/cdrs", params={"from": "2026-03-01", "to": "2026-03-01",
                                                       "account": "19900000000"})  # fmt: skip
        assert page.status_code == 200 and ids_on(page.text) == [] and "没有符合条件" in page.text
