"""The console across a cluster: two `lwork serve` nodes on PostgreSQL and Redis with rtpengine
as their media backend and sipp as the carrier. Alice's app polls node 1 and calls Bob, whose
app polls node 2 and stays silent; the call falls back to Bob's phone (sipp) and lives on node
1. The console of either node shows it (event stream, page, a real browser on node 2) naming
node 1, and node 2's console hangs it up: the phone gets its BYE, the record its reason.

Screenshots are saved under the test's tmp folder and their paths printed (``-s``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from test_admin_browser import CHROMIUM, playwright_or_skip
from test_p2p_calls import rtpengine
from test_sip_trunk import free_udp_port
from test_trunk_calls import SIPP, finished, sipp

from lwork.boss.audit import AuditTrail
from lwork.storage.tables import cdrs

from fakes.chromium_pages import Screenshots, open_page
from fakes.nodes import app_env, held_poll, register_and_login, start_node, wait_ready
from fakes.operator_browser import PASSWORD, csrf_of, sign_in
from fakes.rtp_peer import RtpPeer
from fakes.sms_gateway import SmsGateway

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp not installed: apt-get install sipp")
ALICE, BOB = "13800000001", "13900000002"


@pytest.fixture
def env(postgres_url: str, redis_url: str, sms_gateway: SmsGateway) -> Iterator[dict[str, str]]:
    yield app_env(
        sms_gateway,
        LWORK_DATABASE__URL=postgres_url,
        LWORK_BUS__URL=redis_url,
        LWORK_SECRET_KEY="shared-secret-of-both-nodes",
        LWORK_CALLS__P2P_FALLBACK_S="0.5",
        LWORK_SIP__ENABLED="true",
        LWORK_SIP__LISTEN_PORT="0",
        LWORK_SIP__OPTIONS_INTERVAL_S="0",
        LWORK_SIP__TRUSTED_SOURCES='["127.0.0.1"]',
        LWORK_SIP__NUMBER_RULES='[["00", "+"], ["0", "+44"]]',
        LWORK_SIP__DEFAULT_COUNTRY_CODE="44",
        LWORK_BILLING__SIGNUP_GIFT_COINS="300",
        LWORK_BILLING__SIGNUP_GIFT_MINUTES="100",
        LWORK_LOG_LEVEL="INFO",
    )


def add_operator(env: dict[str, str], tmp: Path, name: str, role: str) -> None:
    """``lwork admin user add``, the password on standard input, as the README says."""
    done = subprocess.run(
        [sys.executable, "-m", "lwork", "admin", "user", "add", name, "--role", role],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
        env={**os.environ, **env, "LWORK_DATA_DIR": str(tmp / "cli")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def snapshots(client: httpx.AsyncClient, url: str, count: int) -> list[dict[str, Any]]:
    """The next ``count`` snapshots of a console's live calls' event stream."""
    found: list[dict[str, Any]] = []
    async with client.stream("GET", url + "/admin/calls/events") as stream:
        assert stream.status_code == 200
        event = ""
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "calls":
                found.append(json.loads(line[6:]))
                if len(found) == count:
                    return found
    raise AssertionError("the event stream ended early")


async def until_listed(client: httpx.AsyncClient, url: str, sid: str) -> dict[str, Any]:
    """The snapshot of ``url``'s console that first lists call ``sid``."""
    async with asyncio.timeout(30):
        while True:
            for seen in await snapshots(client, url, 3):
                if any(row["sid"] == sid for row in seen["calls"]):
                    return seen


@contextlib.asynccontextmanager
async def carrier(tmp_path: Path, port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """sipp as the carrier on ``port``: Bob's phone rings, answers, waits for our BYE (its
    whole run must fit in sipp's 30 s: started once the nodes are up)."""
    phone_media = await RtpPeer.open()
    process = await sipp(tmp_path, "uas_pstn_media.xml", "-p", str(port), "-set", "rtpport",
                         str(phone_media.port))  # fmt: skip
    try:
        yield process
    finally:
        phone_media.close()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_either_nodes_console_shows_and_hangs_up_a_call_of_the_other(
    env: dict[str, str],
    sms_gateway: SmsGateway,
    tmp_path: Path,
    postgres_url: str,
) -> None:
    async_playwright = playwright_or_skip()
    sip_port = free_udp_port()
    shots = Screenshots(tmp_path / "screenshots")
    async with rtpengine() as ng_url:
        env = {**env, "LWORK_MEDIA__NG_URL": ng_url, "LWORK_SIP__PROXY_PORT": str(sip_port)}
        nodes = [start_node(name, tmp_path, env) for name in ("n1", "n2")]
        alice_rtp = await RtpPeer.open()
        try:
            async with (
                httpx.AsyncClient(timeout=40) as client,
                httpx.AsyncClient(timeout=40) as console_one,
                httpx.AsyncClient(timeout=40) as console_two,
                httpx.AsyncClient(timeout=40) as support_two,
            ):
                for name, node in zip(("n1", "n2"), nodes, strict=True):
                    await wait_ready(client, node, tmp_path, name)
                one, two = nodes
                add_operator(env, tmp_path, "alice", "admin")
                add_operator(env, tmp_path, "sam", "support")
                for browser, node, name in ((console_one, one, "alice"),
                                            (console_two, two, "alice"),
                                            (support_two, two, "sam")):  # fmt: skip
                    browser.base_url = httpx.URL(node.url)
                    assert (await sign_in(browser, name)).status_code == 303
                async with carrier(tmp_path, sip_port) as phone:
                    await register_and_login(client, one, sms_gateway, ALICE, "alice-phone")
                    await register_and_login(client, two, sms_gateway, BOB, "bob-phone")
                    # Bob's app holds its poll on node 2; Alice's app calls through node 1.
                    bob_poll = await held_poll(client, two, {"acc": BOB, "device_id": "bob-phone"})
                    call = {"user_id": ALICE, "caller_phone": ALICE, "callee_phone": BOB,
                            "sdp": {"ip": ["127.0.0.1"], "port": alice_rtp.port},
                            "userclass": "registered", "dev_id": "alice-phone", "type": "p2p",
                            "acc": ALICE, "clidata": {}}  # fmt: skip
                    r = await client.post(one.url + "/lwork/mobile/voip/calls", json=call)
                    assert r.status_code == 200, r.text
                    sid = r.json()["session_id"]
                    assert sid.startswith("n1@@")  # the call lives on node 1
                    invited = (await bob_poll).json()["data"]
                    assert "opdata" in invited[0], invited  # the invitation, over the bus
                    # Bob's app stays silent: the call falls back to his phone, which answers.
                    for _ in range(200):
                        status = await client.get(one.url + "/lwork/mobile/voip/calls",
                                                  params={"session_id": sid})  # fmt: skip
                        if status.json()["peer_status"] in ("hookoff", "release"):
                            break
                        await asyncio.sleep(0.05)
                    assert status.json()["peer_status"] == "hookoff", status.text

                    # Both consoles list it, each row naming node 1.
                    for browser, node in ((console_one, one), (console_two, two)):
                        seen = await until_listed(browser, node.url, sid)
                        row = next(r for r in seen["calls"] if r["sid"] == sid)
                        assert (row["node"], row["kind"], seen["total"]) == ("n1", "p2p", 1)
                        assert row["caller"] == "*******0001" and not seen["partial"]
                    page = await console_two.get("/admin/calls")
                    assert sid in page.text and '<td class="node">n1</td>' in page.text
                    token = csrf_of(page)
                    # A support user of node 2 sees it and may not end it.
                    support_page = await support_two.get("/admin/calls")
                    assert sid in support_page.text
                    r = await support_two.post(
                        "/admin/calls/hangup", data={"csrf": csrf_of(support_page), "sid": sid}
                    )
                    assert r.status_code == 403
                    # A forged session id names no node's call: nothing ends, in time.
                    r = await console_two.post(
                        "/admin/calls/hangup", data={"csrf": token, "sid": "n9@@nothing"}
                    )
                    assert r.headers["location"] == "/admin/calls?done=call_gone"
                    r = await console_one.get(
                        one.url + f"/lwork/mobile/voip/calls?session_id={sid}"
                    )
                    assert r.json()["peer_status"] == "hookoff"

                    # The real browser, on node 2: sees node 1's call, hangs it up.
                    async with async_playwright() as driver:
                        chromium = await driver.chromium.launch(
                            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
                        )
                        try:
                            page_, errors = await open_page(
                                chromium, viewport={"width": 1280, "height": 600}
                            )

                            shot = shots.of(page_)

                            await page_.goto(two.url + "/admin/sign-in")
                            await page_.fill("input[name=name]", "alice")
                            await page_.fill("input[name=password]", PASSWORD)
                            await page_.click("form.sign-in button")
                            await page_.wait_for_url("**/admin/calls")
                            # English: a chromium without CJK fonts shows Chinese as boxes
                            await page_.click("header a.lang")
                            row_ = f'#calls tr[data-sid="{sid}"]'
                            await page_.wait_for_selector(row_)
                            first = await page_.inner_text(f"{row_} td:nth-child(6)")
                            await page_.wait_for_function(
                                """([row, first]) => {
                                    const cells = document.querySelectorAll(row + " td");
                                    return cells.length && cells[5].textContent !== first;
                                }""",
                                arg=[row_, first],
                            )  # the stream keeps it current: the duration moves on
                            cells = await page_.locator(f"{row_} td").all_inner_texts()
                            assert cells[0] == "p2p" and cells[10] == "n1", cells
                            await shot("node2-console-shows-node1-call")
                            page_.once(
                                "dialog", lambda dialog: asyncio.ensure_future(dialog.accept())
                            )
                            await page_.click(f"{row_} button.danger")
                            await page_.wait_for_url("**/admin/calls?done=hung_up")
                            await page_.wait_for_selector("#calls tr.none")
                            assert "The call was hung up" in await page_.inner_text("p.notice")
                            await shot("node2-hung-up-node1-call")
                            assert errors == [], errors
                        finally:
                            await chromium.close()

                    # Node 1 ended it: the app reads release, the phone got its BYE.
                    status = await client.get(one.url + "/lwork/mobile/voip/calls",
                                              params={"session_id": sid})  # fmt: skip
                    assert status.json()["peer_status"] == "release"
                    await finished(phone)
                    after = (await snapshots(console_one, one.url, 1))[0]
                    assert (after["total"], after["calls"]) == (0, [])
        finally:
            alice_rtp.close()
            for node in nodes:
                if node.process.poll() is None:
                    node.process.terminate()
                    node.process.wait(20)

    database = create_async_engine(postgres_url)
    try:
        async with database.connect() as conn:
            records = (await conn.execute(select(cdrs).where(cdrs.c.id.startswith(sid)))).all()
        assert records and {r.end_reason for r in records} == {"admin_hangup"}
        entries = await AuditTrail(database).entries()
    finally:
        await database.dispose()
    changes = [(e.actor, e.result, e.account) for e in entries if e.action == "hangup"]
    assert changes == [
        ("console:sam", "forbidden", None),
        ("console:alice", "no_such_call", None),
        ("console:alice", "ok", ALICE),
    ]
    shots.print_paths()
