"""The app versions page and the read-only settings view through real HTTP: an administrator's
versions are what the apps' ``version_*`` endpoints answer next (CONTRACT §7); bad values are
refused naming the field; support reads both pages and changes nothing; no secret of the
running settings appears on the settings page; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from lwork.boss.audit import AuditTrail

from fakes.operator_browser import PASSWORD, browser, csrf_of, sign_in

Factory = Callable[..., Any]
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
VERSIONS = {
    "version_no": "2.4.1", "version_path": "https://dl.example.cn/lwork-2.4.1.apk",
    "version_info": "修复若干问题\n" + SCRIPT, "i_version_no": "2.4.0",
    "i_version_path": "https://apps.apple.com/app/id1", "i_version_info": "bug fixes",
}  # fmt: skip


async def test_versions_set_in_the_console_are_what_the_apps_get(server_factory: Factory) -> None:
    async with server_factory() as server, browser(server.url) as client:
        assert (await server.get("/lwork/mobile/version_dth_no")).json() == {"status": "failed"}
        await server.services.operators.add("root", "admin", PASSWORD, time.time())
        await server.services.operators.add("sam", "support", PASSWORD, time.time())
        assert (await client.get("/admin/versions")).status_code == 303
        assert (await sign_in(client, "root")).status_code == 303
        page = await client.get("/admin/versions")
        assert page.status_code == 200 and page.text.count('action="/admin/versions"') == 3

        r = await client.post("/admin/versions",
                              data={"csrf": csrf_of(page), "kind": "dth", **VERSIONS})  # fmt: skip
        assert (r.status_code, r.headers["location"]) == (303, "/admin/versions?saved=dth")
        answer = (await server.get("/lwork/mobile/version_dth_no")).json()
        assert answer == {"status": "ok", **VERSIONS}  # the app gets the text as typed (JSON)
        assert (await server.get("/lwork/mobile/version_no")).json() == {"status": "failed"}
        page = await client.get("/admin/versions?saved=dth")
        assert "已保存" in page.text and "2.4.1" in page.text
        assert SCRIPT not in page.text and ESCAPED in page.text  # the page shows it as text

        common = {**VERSIONS, "version_info": "", "i_version_info": ""}
        r = await client.post("/admin/versions",
                              data={"csrf": csrf_of(page), "kind": "common", **common})  # fmt: skip
        assert r.status_code == 303
        for path in ("version_common_no", "version_commont_no"):  # and the spec's spelling
            assert (await server.get(f"/lwork/mobile/{path}")).json()["version_info"] == ""

        for fields, field in (
            ({"kind": "ios"}, "kind"),
            ({"version_path": "javascript:alert(1)"}, "version_path"),
            ({"i_version_path": "ftp://x"}, "i_version_path"),
            ({"version_no": SCRIPT}, "version_no"),
            ({"i_version_info": "x" * 2001}, "i_version_info"),
            ({"version_info": "\x1b[2J"}, "version_info"),
        ):
            data = {"csrf": csrf_of(page), "kind": "dth", **VERSIONS, **fields}
            r = await client.post("/admin/versions", data=data)
            assert r.status_code == 400 and f"{field}:" in r.text, fields
            assert SCRIPT not in r.text  # the refused values come back as text
        assert (await server.get("/lwork/mobile/version_dth_no")).json() == {"status": "ok",
                                                                            **VERSIONS}  # fmt: skip

        async with browser(server.url) as support:
            assert (await sign_in(support, "sam")).status_code == 303
            page = await support.get("/admin/versions")
            assert page.status_code == 200 and "2.4.1" in page.text
            assert 'action="/admin/versions"' not in page.text
            r = await support.post("/admin/versions",
                                   data={"csrf": csrf_of(page), "kind": "dth", **VERSIONS,
                                         "version_no": "9.9.9"})  # fmt: skip
            assert r.status_code == 403
            r = await client.post("/admin/versions", data={"kind": "dth", **VERSIONS})
            assert r.status_code == 403  # no CSRF token
        assert (await server.get("/lwork/mobile/version_dth_no")).json()["version_no"] == "2.4.1"
        entries = [(e.actor, e.action, e.result) for e in
                   await AuditTrail(server.services.engine).entries()]  # fmt: skip
        assert entries.count(("console:root", "versions", "ok")) == 2
        assert entries.count(("console:root", "versions", "invalid_params")) == 6
        assert ("console:sam", "versions", "forbidden") in entries
        assert ("console:root", "versions", "forbidden") in entries


SECRETS = {
    "secret_key": "sk-0123456789abcdef0123456789abcdef",
    "metrics": {"token": "metrics-token-0123456789"},
    "payments": {"test": {"enabled": True, "secret": "pay-test-secret-0123456789"}},
    "boss": {"keys": {"boss1": ["boss-hmac-key-0123456789"]}},
    "push": {"huawei": {"app_secret": "huawei-secret-0123456789"}},
    "sip": {"password": "sip-pass-0123456789"},
}


async def test_the_settings_view_masks_every_secret(server_factory: Factory) -> None:
    async with server_factory(**SECRETS) as server, browser(server.url) as client:
        await server.services.operators.add("sam", "support", PASSWORD, time.time())
        assert (await client.get("/admin/settings")).status_code == 303
        assert (await sign_in(client, "sam")).status_code == 303
        page = await client.get("/admin/settings")
        assert page.status_code == 200 and "系统配置" in page.text
        for value in (
            "sk-0123456789abcdef",
            "metrics-token-0123456789",
            "pay-test-secret-0123456789",
            "boss-hmac-key-0123456789",
            "huawei-secret-0123456789",
            "sip-pass-0123456789",
            "gw-secret",
        ):  # the SMS gateway's Authorization header of the tests
            assert value not in page.text, value
        assert '<td>secret_key</td><td class="detail">•••••• (set)</td>' in page.text
        assert '<td>node</td><td class="detail">n1</td>' in page.text
        assert '<td>payments.test.enabled</td><td class="detail">true</td>' in page.text


async def test_the_live_calls_page_says_when_it_was_updated(server_factory: Factory) -> None:
    async with server_factory(billing={"timezone": "Asia/Shanghai"}) as server:
        async with browser(server.url) as client:
            await server.services.operators.add("sam", "support", PASSWORD, time.time())
            assert (await sign_in(client, "sam")).status_code == 303
            page = await client.get("/admin/calls")
            shown = page.text.split('<span id="updated">')[1].split("</span>")[0]
            # the snapshot's time of day in billing.timezone (not UTC, not "-")
            at = dt.datetime.strptime(shown, "%H:%M:%S")
            now = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
            delta = abs(now.hour * 3600 + now.minute * 60 + now.second
                        - (at.hour * 3600 + at.minute * 60 + at.second))  # fmt: skip
            assert min(delta, 86400 - delta) <= 60, (shown, now)
            async with client.stream("GET", "/admin/calls/events") as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        assert '"updated": "' in line
                        break
