"""One attack per call-flow row of original-behavior.md §12 (rows 19-25; issue #13): real HTTP,
the real relay, RTP over UDP, and sipp as the carrier. Row 24 (the long poll) is in
``tests/api/test_original_weaknesses.py``."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from test_call_records import closed_records
from test_p2p_calls import ALICE, BOB, make_app, two_apps
from test_sip_trunk import free_udp_port
from test_trunk_calls import (
    PHONE_NUMBER,
    SIPP,
    fallen_back_call,
    finished,
    first_invitation,
    sipp,
    trunk_settings,
)

from lwork.billing.rating import billable_minutes
from lwork.storage.tables import ledger

from fakes.rtp_peer import eventually

needs_sipp = pytest.mark.skipif(
    SIPP is None, reason="sipp not installed: apt-get install sip-tester"
)
FALLEN_BACK = {"status": "failed", "reason": "already_call_real_phone"}


@needs_sipp
async def test_row_19_an_answer_after_the_fallback_makes_no_second_media_path(
    server_factory: Any, tmp_path: Path
) -> None:
    async with fallen_back_call(server_factory, tmp_path) as (server, alice, bob, sid, opdata, _):
        answer = {"opdata": opdata, "sdp": {"ip": [], "port": bob.rtp.port}}
        assert await bob.post("p2p_answer", answer) == FALLEN_BACK
        assert await bob.post("sip_answer", {"session_id": opdata["session_id"]}) == FALLEN_BACK
        assert server.services.calls.active == 1  # the phone leg's call, no leg for Bob's app
        assert (await alice.status(sid))["peer_status"] == "hookoff"


@needs_sipp
async def test_row_20_a_reject_after_the_fallback_leaves_the_phone_call_up(
    server_factory: Any, tmp_path: Path
) -> None:
    async with fallen_back_call(server_factory, tmp_path) as (server, alice, bob, sid, opdata, _):
        assert await bob.post("p2p_reject", {"opdata": opdata}) == FALLEN_BACK
        assert await bob.post("sip_reject", {"session_id": opdata["session_id"]}) == FALLEN_BACK
        await asyncio.sleep(0.3)
        assert (await alice.status(sid))["peer_status"] == "hookoff"
        assert server.services.calls.active == 1


@needs_sipp
@pytest.mark.parametrize("how", ["p2p_reject", "sip_reject"])
async def test_row_21_an_app_rejecting_a_phones_call_sends_the_carrier_busy(
    server_factory: Any, tmp_path: Path, how: str
) -> None:
    async with server_factory(**trunk_settings(free_udp_port())) as server:
        bob = await make_app(server, BOB, "bob-phone")
        await bob.poll()
        assert server.services.sip_address is not None
        target = "{}:{}".format(*server.services.sip_address)
        carrier = await sipp(tmp_path, "uac_busy.xml", "-s", BOB, target)
        try:
            invite = await first_invitation(bob)
            opdata = invite["opdata"]
            body = {"opdata": opdata} if how == "p2p_reject" else opdata
            assert await bob.post(how, body) == {"status": "ok"}
            await finished(carrier)  # sipp got its 486 and ACKed: the reject is no no-op
            assert await eventually(lambda: server.services.calls.active == 0, 5)
        finally:
            bob.rtp.close()
            if carrier.returncode is None:
                carrier.kill()


async def test_row_22_a_callee_that_only_polls_the_callers_session_keeps_the_call(
    server_factory: Any,
) -> None:
    """The original's callee had to read its own session id; p2p_poll with the caller's id
    (the only id older clients use) keeps the callee's leg alive here."""
    settings = {"push": {"hold_s": 0.5}, "calls": {"p2p_fallback_s": 30, "keepalive_s": 1}}
    async with server_factory(**settings) as server, two_apps(server) as (alice, bob):
        sid = (await alice.call(BOB))["session_id"]
        opdata = (await bob.poll())["data"][0]["opdata"]
        assert await bob.post("p2p_ringing", {"opdata": opdata}) == {"status": "ok"}
        answer = {"opdata": opdata, "sdp": {"ip": [], "port": bob.rtp.port}}
        assert (await bob.post("p2p_answer", answer))["status"] == "ok"
        ends = time.monotonic() + 3.5  # several keep-alive periods
        while time.monotonic() < ends:
            assert (await alice.status(sid))["peer_status"] == "p2p_hookoff"
            polled = await bob.post("p2p_poll", {"opdata": opdata})
            assert polled["peer_status"] == "p2p_hookoff", polled
            await asyncio.sleep(0.25)
        assert server.services.calls.active == 1


@needs_sipp
async def test_row_23_the_caller_id_is_the_accounts_not_the_clients(
    server_factory: Any, tmp_path: Path
) -> None:
    """The caller names another number as its ``caller_phone`` (and a ``user_id`` suffix):
    the phone call is presented, recorded and billed as the account's own."""
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_busy.xml", "-p", str(port))
    try:
        async with server_factory(**trunk_settings(port)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            body = {"user_id": ALICE + "_13912345678", "caller_phone": "13912345678",
                    "callee_phone": PHONE_NUMBER, "sdp": {"ip": [], "port": alice.rtp.port},
                    "dev_id": alice.device, "type": "pstn", "acc": "13912345678"}  # fmt: skip
            started = await alice.post("voip/calls", body)
            assert started["status"] == "ok"
            await finished(carrier)
            [row] = await closed_records(server, ALICE, 1)
            assert (row["caller"], row["caller_id"]) == (ALICE, ALICE)
            assert await server.services.records.rows("13912345678", 0, 1e12) == []  # type: ignore[union-attr]
            alice.rtp.close()
    finally:
        if carrier.returncode is None:
            carrier.kill()


async def test_row_25_billing_rounds_up_once_and_the_month_is_this_years(
    server_factory: Any,
) -> None:
    # a minute is a minute, and an answered call of no length costs nothing
    # (the full table: tests/unit/billing/test_billing_rating.py)
    assert [billable_minutes(s) for s in (0, 1, 60, 60.0004, 61)] == [0, 1, 1, 1, 2]
    async with server_factory() as server:
        alice = await make_app(server, ALICE, "alice-phone")
        alice.rtp.close()
        now = dt.datetime.now(server.services.billing.zone)
        a_year_ago = now.replace(year=now.year - 1, day=min(now.day, 28))
        # a charge of this very month last year, and one of this month
        async with server.services.engine.begin() as conn:
            for ref, when, cents in (("last-year", a_year_ago, 500), ("now", now, 30)):
                await conn.execute(insert(ledger).values(
                    uuid=ALICE, ref=ref, kind="charge", coins=0, gift_coins=-cents, minutes=0,
                    forgiven=0, note="test", created_at=when.timestamp()))  # fmt: skip
        body = {"uuid": ALICE, "device_id": alice.device}
        async with server.polling(ALICE, alice.device):
            coins = (await server.post("/lwork/mobile/get_coin", body)).json()
        assert coins["status"] == "ok" and coins["month_consumed"] == 30 / 100, coins
