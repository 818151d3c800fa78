"""The console's live calls with rtpengine as the media backend (issue #16): the board's rows
carry loss, jitter, RTT and MOS mapped from rtpengine's `query` (the phones' RTCP reports), as
the apps' own status does, and ask rtpengine at most once per live call per refresh, only while
an operator watches."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_admin_live_calls import snapshots
from test_p2p_calls import ALICE, BOB, FAST, App, rtpengine, two_apps

from lwork.media.ng.client import NgClient
from lwork.media.relay import rtcp

from fakes.operator_browser import PASSWORD, browser, sign_in

Factory = Callable[..., Any]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Once, on SQLite: the board's figures come from rtpengine, not from the database."""
    return f"sqlite+aiosqlite:///{tmp_path / 'lwork.db'}"


REFRESH_S = 2.0  # calls.stats_refresh_s


async def queries(ng_url: str) -> int:
    """How many `query` commands rtpengine has answered so far."""
    host, port = ng_url.removeprefix("udp://").split(":")
    async with NgClient(host, int(port), timeout_s=1.0, retries=2) as ng:
        return int((await ng.statistics())["controlstatistics"]["totalquerycount"])


async def report_quality(apps: dict[str, App], to_relay: dict[str, tuple[str, int]]) -> None:
    """Each phone's RTCP to rtpengine: a sender report, then a receiver report about the
    other's stream (Bob lost 19 % of Alice's, 40 ms jitter; Alice 10 % of Bob's, 20 ms)."""
    ntp = rtcp.ntp_from_unix(time.time())

    def cname(ssrc: int) -> bytes:
        return bytes(rtcp.SourceDescription(((ssrc, ((1, b"app@phone"),)),)))

    for phone, ssrc in ((ALICE, 0xA11CE), (BOB, 0xB0B)):
        host, port = to_relay[phone]
        sr = rtcp.SenderReport(ssrc, ntp, 3200, 20, 640)
        apps[phone].rtp.send_rtcp(bytes(sr) + cname(ssrc), (host, port + 1))
    await asyncio.sleep(0.2)
    reports = ((ALICE, 0xA11CE, 0xB0B, 25, 7, 160), (BOB, 0xB0B, 0xA11CE, 51, 12, 320))
    for phone, ssrc, about, fraction, lost, jitter in reports:
        block = rtcp.ReportBlock(about, fraction, lost, 19, jitter, rtcp.ntp_middle32(ntp), 6553)
        host, port = to_relay[phone]
        rr = rtcp.ReceiverReport(ssrc, (block,))
        apps[phone].rtp.send_rtcp(bytes(rr) + cname(ssrc), (host, port + 1))
    await asyncio.sleep(0.2)


async def watch_until(admin: httpx.AsyncClient, done: Callable[[dict[str, Any]], bool],
                      limit: int = 20) -> tuple[dict[str, Any], int]:  # fmt: skip
    """Read snapshots until a row satisfies ``done``: that row and how many were read."""
    found: dict[str, Any] = {}
    async with admin.stream("GET", "/admin/calls/events") as stream:
        assert stream.status_code == 200
        read = 0
        async for line in stream.aiter_lines():
            if not line.startswith("data: "):
                continue
            snapshot = json.loads(line[6:])
            read += 1
            if snapshot.get("calls"):
                found = snapshot["calls"][0]
                if done(found):
                    return found, read
            if read >= limit:
                break
    raise AssertionError(f"no snapshot showed it: {found}")


async def test_rtpengine_calls_show_their_quality_on_the_board(server_factory: Factory) -> None:
    settings = {**FAST, "calls": {**FAST["calls"], "keepalive_s": 120}}
    async with (
        rtpengine() as ng_url,
        server_factory(**settings, media={"ng_url": ng_url}) as server,
        two_apps(server) as (alice, bob),
        browser(server.url) as admin,
    ):
        await server.services.operators.add("alice", "admin", PASSWORD, time.time())
        assert (await sign_in(admin, "alice")).status_code == 303
        started = await alice.call(BOB)
        sid = started["session_id"]
        opdata = (await bob.poll())["data"][0]["opdata"]
        answer = await bob.post(
            "p2p_answer", {"opdata": opdata, "sdp": {"ip": ["127.0.0.1"], "port": bob.rtp.port}}
        )
        to_relay = {ALICE: (started["ip"], started["port"]), BOB: (answer["ip"], answer["port"])}
        alice.send(to_relay[ALICE], 20, ssrc=0xA11CE)
        bob.send(to_relay[BOB], 20, ssrc=0xB0B)
        assert len(await bob.rtp.wait_rtp(20)) == 20
        assert len(await alice.rtp.wait_rtp(20)) == 20
        await asyncio.sleep(1)
        apps = {ALICE: alice, BOB: bob}
        await report_quality(apps, to_relay)

        # nobody watches, nobody polls the call's status: rtpengine is not asked
        before = await queries(ng_url)
        await asyncio.sleep(REFRESH_S * 1.5)
        assert await queries(ng_url) == before

        # phones report again every few seconds (RFC 3550 6.2): so do these, until the board
        # shows the figures, so that one report rtpengine took too late is not the test's end
        async def keep_reporting() -> None:
            while True:
                await asyncio.sleep(2)
                await report_quality(apps, to_relay)

        reporting = asyncio.create_task(keep_reporting())
        try:
            # until both phones' reports are in: between the two, the board may show one's
            row, read = await watch_until(
                admin, lambda r: r["loss_pct"] == 19.0 and None not in (r["jitter_ms"], r["mos"])
            )
        finally:
            reporting.cancel()
        await asyncio.sleep(1)  # a report sent as it was cancelled has landed
        assert row["sid"] == sid and row["kind"] == "p2p"
        assert row["loss_pct"] == 19.0  # the worse of the two streams, Bob's report of Alice's
        assert row["jitter_ms"] == 40.0
        assert 1 <= row["mos"] <= 2 and row["rtt_ms"] is not None and row["rtt_ms"] > 0

        # Two operators watch 6 snapshots each (6 s): one snapshot a second serves both, and
        # it asks for a refresh only when the figures are stats_refresh_s / 2 old or more.
        before = await queries(ng_url)
        async with browser(server.url) as second:
            assert (await sign_in(second, "alice")).status_code == 303
            seen = await asyncio.gather(snapshots(admin, 6), snapshots(second, 6))
        asked = await queries(ng_url) - before
        figures = {(s["calls"][0]["loss_pct"], s["calls"][0]["jitter_ms"]) for w in seen for s in w}
        assert figures == {(19.0, 40.0)}
        assert all(1 <= s["calls"][0]["mos"] <= 2 for watched in seen for s in watched)
        assert 1 <= asked <= 6 / (REFRESH_S / 2) + 1, asked

        # nobody watches any more: rtpengine is not asked again
        await asyncio.sleep(0.5)
        before = await queries(ng_url)
        await asyncio.sleep(REFRESH_S * 1.5)
        assert await queries(ng_url) == before
