"""``cdrs`` over the BOSS interface: every record of a range, streamed in batches as JSON lines
or CSV, by dates of ``billing.timezone``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from collections.abc import Callable
from typing import Any

from lwork.storage.tables import cdrs

from fakes.boss_client import BossClient

SECRET = "boss-secret-0123456789"
ALICE, BOB = "02150001234", "02150005678"
ROWS = 3000
# 1 March 2026 00:00 in Shanghai; a record every 40 s spans about 33 hours
FIRST = dt.datetime(2026, 3, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()

Factory = Callable[..., Any]


def record(n: int) -> dict[str, Any]:
    start = FIRST + 40 * n
    answered = n % 3 != 0
    return {
        "id": f"n1@@{n:032x}", "uuid": ALICE if n % 2 else BOB, "kind": "out",
        "caller": ALICE, "callee": "02079460000", "caller_id": ALICE, "started_at": start,
        "answered_at": start + 2 if answered else None, "ended_at": start + 30,
        "billsec": 28 if answered else 0, "minutes": 1 if answered else 0, "cost": 0,
        "charge_minutes": 1 if answered else 0, "end_reason": "hangup_caller",
        "sip_status": 200 if answered else 486, "mos": 4.2 if answered else None, "node": "n1",
    }  # fmt: skip


async def test_every_record_of_a_range_is_streamed(server_factory: Factory) -> None:
    boss = {"keys": {"billing": [SECRET]}, "allowed_sources": ["127.0.0.1/32"], "cdr_batch": 500}
    async with server_factory(boss=boss, billing={"timezone": "Asia/Shanghai"}) as server:
        async with server.services.engine.begin() as conn:
            await conn.execute(cdrs.insert(), [record(n) for n in range(ROWS)])
        client = BossClient(server.url, "billing", SECRET)
        try:
            request = client.signed("cdrs", {"start": "2026-03-01", "end": "2026-03-02"})
            chunks = []
            async with client.client.stream(
                "POST", server.url + request.path, content=request.body, headers=request.headers
            ) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("application/x-ndjson")
                assert "content-length" not in response.headers  # not built whole first
                assert response.headers["transfer-encoding"] == "chunked"
                async for chunk in response.aiter_raw():
                    chunks.append(chunk)
            lines = b"".join(chunks).decode().splitlines()
            assert len(chunks) >= ROWS // 500  # one batch after another, not all at once
            records = [json.loads(line) for line in lines]
            assert [r["id"] for r in records] == [record(n)["id"] for n in range(ROWS)]
            assert records[1]["start"] == "2026-03-01T00:00:40+08:00"
            assert records[1]["charge"]["minutes"] == 1 and records[1]["quality"]["mos"] == 4.2

            opened = await client.call("open", {"request_id": "o", "account": ALICE, "pwd": "p"})
            assert opened.json()["status"] == "ok"
            # one account, one local day (1 March in Shanghai: the first 2160 records)
            r = await client.call("cdrs", {"account": ALICE, "start": "2026-03-01",
                                           "end": "2026-03-01", "format": "csv"})  # fmt: skip
            assert r.headers["content-type"].startswith("text/csv")
            table = list(csv.DictReader(io.StringIO(r.text)))
            wanted = [record(n) for n in range(ROWS) if n % 2 and FIRST + 40 * n < FIRST + 86400]
            assert [row["id"] for row in table] == [w["id"] for w in wanted]
            assert table[0]["account"] == ALICE and table[0]["charge_minutes"] == "1"
            assert table[0]["mos"] == "4.2" and table[0]["answer"] == "2026-03-01T00:00:42+08:00"

            r = await client.call("cdrs", {"start": "2026-02-01", "end": "2026-02-28",
                                           "request_id": str(time.time())})  # fmt: skip
            assert (r.status_code, r.text) == (200, "")
            r = await client.call("cdrs", {"start": "2026-03-02", "end": "2026-03-01"})
            assert r.status_code == 400 and r.json()["reason"] == "invalid_params"
            r = await client.call("cdrs", {"start": "March", "end": "2026-03-01"})
            assert r.status_code == 400 and r.json()["reason"] == "invalid_params"
        finally:
            await client.close()
