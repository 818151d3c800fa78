"""The console in a real browser (Debian's chromium driven by Playwright): sign in, watch a
live call's figures change over server-sent events, switch language, hang the call up, find
its record and export the records as CSV. Screenshots are saved under the test's tmp folder
and their paths printed (run with ``-s`` to see them)."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_admin_live_calls import ALICE, LIVE, live_call

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
    shots = tmp_path / "screenshots"
    shots.mkdir()
    saved: list[Path] = []
    async with server_factory(**LIVE) as server, async_playwright() as driver:
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        chromium = await driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                args=["--no-sandbox"])  # fmt: skip
        try:
            context = await chromium.new_context(
                accept_downloads=True, viewport={"width": 1280, "height": 720}
            )
            context.set_default_timeout(30000)  # a loaded CI machine runs four test workers
            page = await context.new_page()
            errors: list[str] = []
            # Script errors and CSP violations; not the 401 of the wrong password on purpose
            # nor the favicon the browser asks the mobile API for (404).
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                    and not m.text.startswith("Failed to load resource") else None)  # fmt: skip

            async def shot(name: str) -> None:
                path = shots / f"{len(saved) + 1:02d}-{name}.png"
                await page.screenshot(path=str(path), full_page=True)
                saved.append(path)

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
                assert float(cells[9]) > 4 and cells[6].endswith("%")
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
    for path in saved:
        print(f"screenshot: {path}")
