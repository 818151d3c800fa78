"""The console's audit trail page through real HTTP: the console's own actions and the BOSS's,
newest first, by account; escaped and masked."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from lwork.boss.audit import AuditTrail

from fakes.operator_browser import PASSWORD, browser, sign_in

Factory = Callable[..., Any]
ALICE = "13800000001"
SCRIPT = "<script>alert(1)</script>"


async def test_the_audit_trail_page(server_factory: Factory) -> None:
    async with server_factory() as server, browser(server.url) as client:
        assert (await client.get("/admin/audit")).status_code == 303
        trail = AuditTrail(server.services.engine)
        await trail.record("billing", "credit", {"account": ALICE, "note": SCRIPT}, "ok",
                           time.time())  # fmt: skip
        await server.services.operators.add("sam", "support", PASSWORD, time.time())
        assert (await sign_in(client, "sam")).status_code == 303

        page = await client.get("/admin/audit")
        assert page.status_code == 200
        actors = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td>", page.text)
        assert actors == ["console:sam", "billing"]  # newest first
        assert SCRIPT not in page.text and "&lt;script&gt;" in page.text
        assert ALICE not in page.text and "*******0001" in page.text

        page = await client.get("/admin/audit", params={"account": ALICE})
        assert re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td>", page.text) == ["billing"]
        page = await client.get("/admin/audit", params={"account": SCRIPT})
        assert page.status_code == 400 and "account:" in page.text and SCRIPT not in page.text
