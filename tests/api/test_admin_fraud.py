"""The fraud alarms page through real HTTP: alarms listed newest first with their numbers
masked and their text escaped; an administrator ends a block from its row and the next call
check no longer sees it; support reads and cannot unblock; every change and refusal is one
audit row; on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lwork.boss.audit import AuditTrail
from lwork.fraud.store import Alarm

from fakes.operator_browser import PASSWORD, browser, csrf_of, sign_in

Factory = Callable[..., Any]
ACCOUNT = "13812345678"
SCRIPT = "<script>alert(1)</script>"


async def test_an_administrator_ends_a_block_and_support_cannot(server_factory: Factory) -> None:
    async with (
        server_factory() as server,
        browser(server.url) as admin,
        browser(server.url) as support,
    ):
        store = server.services.fraud.store
        now = time.time()
        await store.raise_alarm(Alarm("account", ACCOUNT, f"40 calls in 60 s {SCRIPT}", "n1",
                                      now - 30, now + 3600))  # fmt: skip
        await store.raise_alarm(Alarm("prefix", "+88216", "old news", "n1", now - 7200, now - 60))
        await server.services.operators.add("root", "admin", PASSWORD, now)
        await server.services.operators.add("sam", "support", PASSWORD, now)
        assert (await sign_in(admin, "root")).status_code == 303
        assert (await sign_in(support, "sam")).status_code == 303

        page = await admin.get("/admin/fraud")
        assert page.status_code == 200
        assert ACCOUNT not in page.text and "5678" in page.text  # masked, as in the logs
        assert SCRIPT not in page.text and "&lt;script&gt;" in page.text
        assert page.text.index("40 calls") < page.text.index("old news")  # newest first
        assert page.text.count('action="/admin/fraud/unblock"') == 1  # only the active block
        alarm_id = next(a.id for a in await store.alarms(0, now, True))
        assert await store.blocked([ACCOUNT], time.time()) == {ACCOUNT}

        # support sees the block but has no form, and a forged post is refused and recorded
        seen = await support.get("/admin/fraud")
        assert seen.status_code == 200 and 'action="/admin/fraud/unblock"' not in seen.text
        r = await support.post("/admin/fraud/unblock",
                               data={"csrf": csrf_of(seen), "alarm": str(alarm_id)})  # fmt: skip
        assert r.status_code == 403
        # no CSRF token: refused
        r = await admin.post("/admin/fraud/unblock", data={"alarm": str(alarm_id)})
        assert r.status_code == 403
        assert await store.blocked([ACCOUNT], time.time()) == {ACCOUNT}

        for bad, status in (("999999", 404), ("x' OR 1=1", 400), ("", 400)):
            r = await admin.post("/admin/fraud/unblock",
                                 data={"csrf": csrf_of(page), "alarm": bad})  # fmt: skip
            assert r.status_code == status, bad
        r = await admin.post("/admin/fraud/unblock",
                             data={"csrf": csrf_of(page), "alarm": str(alarm_id)})  # fmt: skip
        assert (r.status_code, r.headers["location"]) == (303, "/admin/fraud?unblocked=1")
        assert await store.blocked([ACCOUNT], time.time()) == set()
        after = await admin.get(r.headers["location"])
        assert 'action="/admin/fraud/unblock"' not in after.text

        trail = [e for e in await AuditTrail(server.services.engine).entries(None, 50)
                 if e.action == "fraud_unblock"]  # fmt: skip
        assert [(e.actor, e.result) for e in trail] == [
            ("console:sam", "forbidden"), ("console:root", "forbidden"),
            ("console:root", "unknown_alarm"), ("console:root", "unknown_alarm"),
            ("console:root", "unknown_alarm"), ("console:root", "ok"),
        ]  # fmt: skip
        assert trail[-1].detail == {"alarm": alarm_id, "subject": ACCOUNT, "blocks_ended": 1}
