"""The console in a real browser (Debian's chromium driven by Playwright): sign in, watch a
live call's figures change over server-sent events, switch language, hang the call up, find
its record and export the records as CSV. Screenshots are saved under the test's tmp folder
and their paths printed (run with ``-s`` to see them)."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_admin_live_calls import ALICE, LIVE, live_call

from lwork.admin.totp import totp

from fakes.chromium_pages import Screenshots, open_page
from fakes.operator_browser import PASSWORD

CHROMIUM = "/usr/bin/chromium"
Factory = Callable[..., Any]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Once, on SQLite: what the browser sees does not depend on the database (the pages'
    queries run on both in tests/api)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'lwork.db'}"


def playwright_or_skip() -> Any:
    """Playwright's entry point, driving Debian's chromium (never a browser it downloads)."""
    missing = None
    if shutil.which(CHROMIUM) is None:
        missing = "chromium is not installed: apt-get install chromium (.ci/run does)"
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing = "playwright is not installed: pip install -e '.[test]'"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return async_playwright


async def test_an_operator_uses_the_console(server_factory: Factory, tmp_path: Path) -> None:
    async_playwright = playwright_or_skip()
    shots = Screenshots(tmp_path / "screenshots")
    async with server_factory(**LIVE) as server, async_playwright() as driver:
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        chromium = await driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                args=["--no-sandbox"])  # fmt: skip
        try:
            page, errors = await open_page(
                chromium, accept_downloads=True, viewport={"width": 1280, "height": 720}
            )
            # Script errors and CSP violations; not the 401 of the wrong password on purpose
            # nor the favicon the browser asks the mobile API for (404).
            page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                    and not m.text.startswith("Failed to load resource") else None)  # fmt: skip

            shot = shots.of(page)

            await page.goto(server.url + "/admin/")
            assert page.url.endswith("/admin/sign-in")
            await page.fill("input[name=name]", "alice")
            await page.fill("input[name=password]", PASSWORD + "?")
            await page.click("form.sign-in button")
            assert "用户名或密码错误" in await page.inner_text("p.problem")
            await shot("sign-in-refused")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form.sign-in button")
            await page.wait_for_url("**/admin/calls")
            await page.wait_for_selector("#calls tr.none")  # no call yet, and the stream is up

            async with live_call(server) as call:
                row = f'#calls tr[data-sid="{call.sid}"]'
                await page.wait_for_selector(row, timeout=30000)  # arrives without a reload
                first = await page.inner_text(f"{row} td:nth-child(6)")
                await page.wait_for_function(
                    """([row, first]) => {
                        const cells = document.querySelectorAll(row + " td");
                        return cells.length && cells[5].textContent !== first
                            && cells[9].textContent !== "";
                    }""",
                    arg=[row, first],
                    timeout=30000,
                )  # the duration moved on, and the MOS came in
                cells = await page.locator(f"{row} td").all_inner_texts()
                assert cells[0] == "p2p" and cells[2] == "*******0001"
                # the snapshot's time, never "-"
                assert re.fullmatch(r"\d\d:\d\d:\d\d", await page.inner_text("#updated"))
                assert float(cells[9]) > 4 and cells[6].endswith("%")
                # the call's MOS over time: a chart that grows a point with every report
                chart = f"{row} svg.mos-chart polyline"
                await page.wait_for_function(
                    """(chart) => {
                        const line = document.querySelector(chart);
                        return line && line.getAttribute("points").split(" ").length >= 3;
                    }""",
                    arg=chart,
                    timeout=30000,
                )
                points = (await page.get_attribute(chart, "points") or "").split(" ")
                assert all(0 <= float(point.split(",")[1]) <= 20 for point in points)
                await shot("live-call")

                await page.click("header a.lang")
                await page.wait_for_selector(f"{row}")
                assert "Live calls" in await page.inner_text("h1")
                await shot("live-call-english")

                page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
                await page.click(f"{row} button.danger")
                await page.wait_for_url("**/admin/calls?done=hung_up")
                assert "The call was hung up" in await page.inner_text("p.notice")
                await page.wait_for_selector("#calls tr.none")
                assert call.sid not in server.services.calls.calls
                await shot("hung-up")

            await page.click("header nav a[href='/admin/cdrs']")
            await page.wait_for_selector(f'#cdrs tr[data-id^="{call.sid}"]')
            assert "admin_hangup" in await page.inner_text("#cdrs tbody")
            await shot("records")
            async with page.expect_download() as waiting:
                await page.click("#export")
            download = await waiting.value
            exported = Path(await download.path()).read_text()
            table = list(csv.DictReader(io.StringIO(exported)))
            assert table and {row["end_reason"] for row in table} == {"admin_hangup"}
            assert all(row["id"].startswith(call.sid) for row in table)

            await page.click("header nav a[href='/admin/accounts']")
            await page.fill("input[name=account]", ALICE)
            await page.click("form.filters button")
            await page.wait_for_selector("#account")
            assert "*******0001" in await page.inner_text("#account")
            assert "admin_hangup" in await page.inner_text("#account-cdrs")
            await page.wait_for_selector(f'#account-cdrs tr[data-id^="{call.sid}"]')
            await shot("account")
            assert errors == [], errors  # no script error, no CSP violation
        finally:
            await chromium.close()
    shots.print_paths()


APP_PASSWORD = "e10adc3949ba59abbe56e057f20f883e"
PAYER = "13600000006"
PAY_SECRET = "staging-secret-0123456789"
PAYING = {"payments": {"test": {"enabled": True, "secret": PAY_SECRET}},
          "billing": {"signup_gift_coins": 0, "timezone": "Asia/Shanghai"}}  # fmt: skip


async def paid_order(server: Any) -> str:
    """An app registers and pays an order through the ``test`` provider (a signed notice)."""
    await server.post("/lwork/sms/auth_code", {"uuid": PAYER, "type": "register"})
    body = {"uuid": PAYER, "device_id": "d", "auth_code": server.gateway.last_code(PAYER),
            "pwd": APP_PASSWORD, "group_id": "common"}  # fmt: skip
    assert (await server.post("/lwork/mobile/register", body)).json() == {"status": "ok"}
    r = await server.post("/lwork/mobile/login", {"acc": PAYER, "pwd": APP_PASSWORD,
                                                  "device_id": "d"})  # fmt: skip
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    wanted = {"uuid": PAYER, "device_id": "d", "pay_type": "test", "money": 30, "coins": 300}
    opened = await server.post("/lwork/mobile/get_payid", wanted, headers=auth)
    payid: str = opened.json()["payid"]
    raw = json.dumps({"payid": payid, "money": "30.00", "trade_no": "T-1"}).encode()
    mac = hmac.new(PAY_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    r = await server.client.post(server.url + "/lwork/pay/notify/test", content=raw,
                                 headers={"X-Lwork-Signature": mac})  # fmt: skip
    assert r.text == "success"
    return payid


async def test_an_administrator_with_a_second_factor_changes_things(
    server_factory: Factory, tmp_path: Path
) -> None:
    """Sign in with a TOTP code, refund an order, credit an account, set the app versions,
    read the settings; a form posted without its CSRF token is refused."""
    async_playwright = playwright_or_skip()
    shots = Screenshots(tmp_path / "screenshots")
    async with server_factory(**PAYING) as server, async_playwright() as driver:
        payid = await paid_order(server)
        await server.services.operators.add("root", "admin", PASSWORD, time.time())
        secret = await server.services.operators.enrol_totp("root")
        chromium = await driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                args=["--no-sandbox"])  # fmt: skip
        try:
            page, errors = await open_page(chromium, viewport={"width": 1280, "height": 800})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                    and not m.text.startswith("Failed to load resource") else None)  # fmt: skip
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))

            shot = shots.of(page)

            await page.goto(server.url + "/admin/lang/en?next=/admin/sign-in")
            await page.fill("input[name=name]", "root")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form.sign-in button")
            await page.wait_for_selector("#code-form")  # the password alone is not enough
            await shot("code-asked")
            await page.fill("input[name=code]", totp(secret, time.time()))
            await page.click("#code-form button")
            await page.wait_for_url("**/admin/calls")

            await page.click("header nav a[href='/admin/orders']")
            row = f'#order-list tr[data-id="{payid}"]'
            await page.fill(f"{row} input[name=reason]", "customer asked <b>twice</b>")
            await page.click(f"{row} button.danger")
            await page.wait_for_selector("p.notice")
            assert f"Refunded: order {payid}" in await page.inner_text("p.notice")
            assert "refunded" in await page.inner_text(row)
            assert "<b>twice</b>" in await page.inner_text(row)  # shown as text, not markup
            await shot("order-refunded")

            await page.click("header nav a[href='/admin/accounts']")
            await page.fill("form.filters input[name=account]", PAYER)
            await page.click("form.filters button")
            await page.wait_for_selector("#credit-form")
            await page.fill("#credit-form input[name=coins]", "5")
            await page.fill("#credit-form input[name=ref]", "goodwill-1")
            await page.click("#credit-form button")
            await page.wait_for_selector("p.notice")
            assert "Credited" in await page.inner_text("p.notice")
            assert "Coins: 5 " in await page.inner_text("#balance") + " "
            await shot("account-credited")

            await page.click("header nav a[href='/admin/versions']")
            form = "#versions-dth form"
            await page.fill(f"{form} input[name=version_no]", "2.5.0")
            await page.fill(f"{form} input[name=version_path]", "https://dl.example.cn/2.5.0.apk")
            await page.fill(f"{form} textarea[name=version_info]", "新版本")
            await page.click(f"{form} button")
            await page.wait_for_selector("p.notice")
            answer = (await server.get("/lwork/mobile/version_dth_no")).json()
            assert (answer["version_no"], answer["version_info"]) == ("2.5.0", "新版本")
            await shot("versions")

            await page.click("header nav a[href='/admin/settings']")
            text = await page.inner_text("#settings")
            assert PAY_SECRET not in text and "payments.test.secret" in text
            await shot("settings")

            # a change posted without the form's token (what a forged page would send)
            status = await page.evaluate(
                """async () => (await fetch("/admin/accounts/credit", {method: "POST",
                    headers: {"content-type": "application/x-www-form-urlencoded"},
                    body: "account=13600000006&coins=99&ref=forged"})).status"""
            )  # fmt: skip
            assert status == 403
            assert errors == [], errors
        finally:
            await chromium.close()
    shots.print_paths()
