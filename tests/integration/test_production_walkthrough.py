"""README, "Running in production", followed step by step as a new operator would (issue #16's
"done when"): the example cluster's settings (``deploy/cluster/lwork.toml``) pointed at this
machine's PostgreSQL, Redis and rtpengine, two ``lwork serve`` nodes, the first operator and
her second factor from the CLI, a sign-in in Debian's chromium, a simulated call (``lwork boss
open``, a ``dth`` registration, ``lwork sim call``) watched live on the other node's console,
then its record found by the account and the audit trail read.

Two deviations from the README, both of the test bench: node api2 serves HTTPS itself (a test
CA's certificate), standing in for nginx's TLS in front of it, and ``push.hold_s`` is 2 s
rather than 60 so the simulated apps dial within seconds. Screenshots are saved under the
test's tmp folder (``screenshots/``) and their paths printed (``-s``)."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import ssl
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
from test_admin_browser import CHROMIUM, playwright_or_skip
from test_p2p_calls import rtpengine

from lwork.admin.totp import totp

from fakes.chromium_pages import Screenshots, open_page
from fakes.nodes import Node, start_node, wait_ready
from fakes.operator_browser import PASSWORD
from fakes.sms_gateway import SmsGateway
from fakes.tls import lwork_ca

ROOT = Path(__file__).resolve().parents[2]
APP_PWD = "e10adc3949ba59abbe56e057f20f883e"
ALICE, BOB = "13800000001", "13900000002"
SECRET_KEY = "walkthrough-secret-key-0123456789abcdef"


def cluster_settings(tmp: Path, postgres_url: str, redis_url: str, ng_url: str,
                     sms_url: str) -> Path:  # fmt: skip
    """Step 1: the example cluster's settings, pointed at this machine."""
    text = (ROOT / "deploy" / "cluster" / "lwork.toml").read_text()
    for old, new in (
        ('host = "0.0.0.0"', 'host = "127.0.0.1"'),
        ('trusted_proxies = ["172.30.0.10"]', 'trusted_proxies = ["127.0.0.1"]'),
        ('"postgresql+asyncpg://lwork@postgres/lwork"', f'"{postgres_url}"'),
        ('"redis://redis:6379/0"', f'"{redis_url}"'),
        ('"udp://rtpengine:2223"', f'"{ng_url}"'),
        ('"https://sms.example.com/api/send"', f'"{sms_url}"'),
        ('allow_from = ["172.30.0.0/24"]', 'allow_from = ["127.0.0.1/32"]'),
    ):
        assert old in text, old  # the README's list of what to change still matches the file
        text = text.replace(old, new)
    path = tmp / "lwork.toml"
    path.write_text(text)
    return path


def lwork(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lwork", *args], input=stdin, capture_output=True, text=True,
        timeout=60, env={**os.environ, **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


async def ready(node: Node, tmp: Path, name: str, verify: ssl.SSLContext | bool = True) -> None:
    async with httpx.AsyncClient(timeout=5, verify=verify) as client:
        await wait_ready(client, node, tmp, name)


async def test_the_running_in_production_walkthrough(
    postgres_url: str, redis_url: str, sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    async_playwright = playwright_or_skip()
    shots = Screenshots(tmp_path / "screenshots")
    ca = lwork_ca()
    async with rtpengine() as ng_url:  # step 2
        config = cluster_settings(tmp_path, postgres_url, redis_url, ng_url, sms_gateway.url)
        env = {"LWORK_CONFIG": str(config), "LWORK_SECRET_KEY": SECRET_KEY,
               "LWORK_PUSH__HOLD_S": "2", "LWORK_DATA_DIR": str(tmp_path / "cli")}  # fmt: skip
        # step 3, with api2 speaking TLS as nginx would in front of it (step 4)
        api1 = start_node("api1", tmp_path, env)
        api2 = start_node("api2", tmp_path, {**env, "LWORK_HTTP__TLS_CERT": str(ca.cert_file),
                                             "LWORK_HTTP__TLS_KEY": str(ca.key_file)})  # fmt: skip
        api2.url = api2.url.replace("http://", "https://")
        sim: subprocess.Popen[bytes] | None = None
        try:
            await ready(api1, tmp_path, "api1")
            await ready(api2, tmp_path, "api2", ca.client_context())
            # step 5: the first operator, and her second factor
            lwork(env, "admin", "user", "add", "alice", "--role", "admin",
                  stdin=f"{PASSWORD}\n{PASSWORD}\n")  # fmt: skip
            printed = lwork(env, "admin", "user", "totp", "alice")
            uri = re.search(r"otpauth://\S+", printed)
            assert uri is not None, printed
            code = parse_qs(urlparse(uri.group(0)).query)["secret"][0]
            secret = base64.b32decode(code + "=" * (-len(code) % 8))

            async with async_playwright() as driver:
                chromium = await driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                        args=["--no-sandbox"])  # fmt: skip
                try:
                    page, errors = await open_page(
                        chromium, ignore_https_errors=True, viewport={"width": 1280, "height": 720}
                    )

                    shot = shots.of(page)

                    # step 6: sign in over HTTPS, the password, then the authenticator's code
                    # (in English: a chromium without CJK fonts shows Chinese as boxes)
                    await page.goto(api2.url + "/admin/lang/en?next=/admin/sign-in")
                    await page.fill("input[name=name]", "alice")
                    await page.fill("input[name=password]", PASSWORD)
                    await shot("sign-in")
                    await page.click("form.sign-in button")
                    await page.wait_for_selector("#code-form")
                    await page.fill("input[name=code]", totp(secret, time.time()))
                    await shot("second-factor")
                    await page.click("#code-form button")
                    await page.wait_for_url("**/admin/calls")

                    # step 7: two provisioned numbers, registered as dth apps, and a call
                    for number in (ALICE, BOB):
                        lwork(env, "boss", "open", number, APP_PWD)
                        body = {"uuid": number, "device_id": "a", "group_id": "dth",
                                "pwd": APP_PWD, "auth_code": APP_PWD}  # fmt: skip
                        async with httpx.AsyncClient(timeout=30) as client:
                            r = await client.post(api1.url + "/lwork/mobile/register", json=body)
                        assert r.json() == {"status": "ok"}, r.text
                    sim_log = tmp_path / "sim.log"
                    sim = subprocess.Popen(
                        [sys.executable, "-m", "lwork", "sim", "call", "--server", api1.url,
                         "--caller", ALICE, "--caller-pwd", APP_PWD, "--callee", BOB,
                         "--callee-pwd", APP_PWD, "--seconds", "15"],
                        env={**os.environ, **env}, stdout=sim_log.open("wb"),
                        stderr=subprocess.STDOUT,
                    )  # fmt: skip
                    row = "#calls tr[data-sid^='api1@@']"  # the call lives on api1
                    await page.wait_for_selector(row, timeout=40000)
                    first = await page.inner_text(f"{row} td:nth-child(6)")
                    await page.wait_for_function(
                        """([row, first]) => {
                            const cells = document.querySelectorAll(row + " td");
                            return cells.length && cells[5].textContent !== first;
                        }""",
                        arg=[row, first],
                    )  # watched live: the duration moves on
                    # rtpengine's figures from the simulated phones' RTCP reports
                    await page.wait_for_function(
                        """(row) => {
                            const cells = document.querySelectorAll(row + " td");
                            return cells.length && [6, 7, 9].every(
                                (i) => cells[i].textContent.trim() !== "");
                        }""",
                        arg=row,
                    )
                    cells = await page.locator(f"{row} td").all_inner_texts()
                    assert cells[0] == "p2p" and cells[10] == "api1", cells
                    assert "*******0001" in cells and "*******0002" in cells, cells
                    await shot("live-call-on-api1-seen-from-api2")
                    assert await asyncio.to_thread(sim.wait, 60) == 0, sim_log.read_text()
                    await page.wait_for_selector("#calls tr.none")

                    # step 8: the call's record, by the account; the audit trail
                    await page.click("header nav a[href='/admin/cdrs']")
                    await page.fill("form.filters input[name=account]", ALICE)
                    await page.click("form.filters button")
                    await page.wait_for_selector("#cdrs tr[data-id]")
                    record = await page.locator("#cdrs tr[data-id]").first.all_inner_texts()
                    assert "hangup_caller" in record[0], record
                    await shot("call-record-by-account")
                    await page.click("header nav a[href='/admin/audit']")
                    await page.wait_for_selector("#audit")
                    await shot("audit-trail")
                    assert errors == [], errors
                finally:
                    await chromium.close()
        finally:
            if sim is not None and sim.poll() is None:
                sim.kill()
                sim.wait(10)
            for node in (api1, api2):
                if node.process.poll() is None:
                    node.process.terminate()
                    node.process.wait(20)
    shots.print_paths()
