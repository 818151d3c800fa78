"""Calls and balances through real HTTP, the SIP trunk (sipp as the carrier) and real RTP:
``balance_not_enough``, free app-to-app calls, the CDR of an answered call, and the talk-time
cap with its warning (CONTRACT §6.1, §8)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_p2p_calls import ALICE, BOB, make_app
from test_sip_trunk import free_udp_port
from test_trunk_calls import PHONE_NUMBER, SIPP, finished, sipp, statuses_until, trunk_settings

from lwork.app import build_app
from lwork.billing.rating import Balance

from conftest import LiveServer, make_settings
from fakes.rtp_peer import RtpPeer, eventually
from fakes.servers import serve_asgi
from fakes.sms_gateway import SmsGateway

Factory = Callable[..., Any]
BROKE = {"billing": {"signup_gift_coins": 0, "signup_gift_minutes": 0}}


async def coins(server: LiveServer, uuid: str) -> Any:
    return (await server.post("/lwork/mobile/get_coin", {"uuid": uuid})).json()


async def test_get_coin_shows_the_welcome_gift_to_the_account_only(
    server_factory: Factory,
) -> None:
    async with server_factory(billing={"signup_gift_coins": 5.5}) as server:
        alice = await make_app(server, ALICE, "alice-phone")
        alice.rtp.close()
        assert await coins(server, ALICE) == {"status": "ok", "coins": 0, "gift_coins": 5.5,
                                              "month_consumed": 0}  # fmt: skip
        assert await coins(server, "13999999999") == {
            "status": "failed", "reason": "register_uuid_not_existed",
        }  # fmt: skip
        await server.services.account_store.provision("02100001111", "dth", "x", 1.0)
        assert (await coins(server, "02100001111"))["reason"] == "register_uuid_not_existed"
        r = await server.post("/lwork/mobile/get_coin", {"uuid": ALICE, "device_id": "thief"})
        assert r.json() == {"status": "failed", "reason": "no_logined"}
        r = await server.post("/lwork/mobile/get_coin", {"uuid": ["13800138000"]})
        assert r.json()["reason"] == "invalid_params"


async def test_an_empty_balance_refuses_phone_calls_but_not_app_calls(
    server_factory: Factory,
) -> None:
    async with server_factory(**BROKE) as server:
        alice = await make_app(server, ALICE, "alice-phone")
        bob = await make_app(server, BOB, "bob-phone")
        refused = {"status": "failed", "reason": "balance_not_enough"}
        assert await alice.call(PHONE_NUMBER, type_="pstn") == refused
        assert await alice.call("02079460001") == refused  # p2p to a number with no app
        r = await server.post("/lwork/mobile/callback",
                              {"uuid": ALICE, "local": ALICE, "remote": PHONE_NUMBER})  # fmt: skip
        assert r.json() == refused
        ng = server.services.ng
        assert ng is not None and await ng.list(limit=100) == []  # refused before the relay
        await bob.poll()  # bob's app is reachable: app-to-app calls are free
        started = await alice.call(BOB)
        assert started["status"] == "ok"
        assert await ng.list(limit=100) == [started["session_id"]]
        await alice.hangup(started["session_id"])
        for app in (alice, bob):
            app.rtp.close()


async def test_a_fallback_the_balance_cannot_pay_releases_the_call(
    server_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lwork.calls")
    async with server_factory(**BROKE, **trunk_settings(free_udp_port(), p2p_fallback_s=0.3)
                              ) as server:  # fmt: skip
        alice = await make_app(server, ALICE, "alice-phone")
        bob = await make_app(server, BOB, "bob-phone")
        await bob.poll()  # reachable, but bob's app will not ring
        sid = (await alice.call(BOB))["session_id"]
        seen: list[str] = []
        await statuses_until(alice, sid, "release", seen)
        assert seen[-1] == "release"
        assert any(sid in r.message and "balance_not_enough" in r.message for r in caplog.records)
        for app in (alice, bob):
            app.rtp.close()


class OffsetClock:
    """The real clock, which the test can move forward (the server's timers and CDRs see it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def server_with_clock(
    tmp_path: Path, db_url: str, gateway: SmsGateway, clock: OffsetClock, **sections: Any
) -> AsyncIterator[LiveServer]:
    settings = make_settings(tmp_path, db_url, gateway.url, **sections)
    app, services = build_app(settings, clock=clock)
    async with serve_asgi(app) as url, httpx.AsyncClient(timeout=30) as client:
        yield LiveServer(url, client, services, gateway, settings)


@pytest.mark.skipif(SIPP is None, reason="sipp not installed: apt-get install sip-tester")
async def test_an_answered_call_is_capped_by_the_balance_warned_and_billed(
    tmp_path: Path, db_url: str, sms_gateway: SmsGateway
) -> None:
    phone_media = await RtpPeer.open()
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_pstn_media.xml", "-p", str(port), "-set", "rtpport",
                         str(phone_media.port))  # fmt: skip
    clock = OffsetClock()
    sections = trunk_settings(port, keepalive_s=3600)
    sections["billing"] = {**BROKE["billing"], "warning_s": 60}
    try:
        async with server_with_clock(tmp_path, db_url, sms_gateway, clock, **sections) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            billing = server.services.billing
            assert await billing.credit(ALICE, "credit:t1", Balance(coins=600))  # two minutes
            started = await alice.call(PHONE_NUMBER, type_="pstn")
            sid = started["session_id"]
            seen: list[str] = []
            await statuses_until(alice, sid, "hookoff", seen)
            assert seen[-1] == "hookoff"

            clock.offset += 58.2  # the cap is 118 s after the answer: warned 60 s before
            data = (await alice.poll())["data"]
            assert [e["event"] for e in data] == ["talk_time_warning"]
            assert data[0]["session_id"] == sid and 58 <= data[0]["seconds_left"] <= 60
            assert (await alice.status(sid))["peer_status"] == "hookoff"

            clock.offset += 60.0
            assert await eventually(lambda: sid not in server.services.calls.calls, 5), (
                "the cap did not end the call"
            )
            assert (await alice.status(sid))["peer_status"] == "release"
            await finished(carrier)  # the phone got our BYE

            cdrs: list[dict[str, Any]] = []
            for _ in range(200):  # written just after the call left (its hang-up goes first)
                cdrs = await server.services.records.rows(ALICE, 0, 1e12)  # type: ignore[union-attr]
                if cdrs and cdrs[0]["ended_at"] is not None:  # opened at answer, closed now
                    break
                await asyncio.sleep(0.02)
            [cdr] = cdrs
            assert (cdr["minutes"], cdr["cost"], cdr["end_reason"]) == (2, 600, "balance_exhausted")
            assert (cdr["kind"], cdr["sip_status"], cdr["caller"], cdr["callee"]) == (
                "out", 200, ALICE, PHONE_NUMBER,
            )  # fmt: skip
            assert 116 <= cdr["billsec"] <= 118 and cdr["node"] == server.settings.node
            assert await billing.balance(ALICE) == Balance()
            assert await coins(server, ALICE) == {"status": "ok", "coins": 0, "gift_coins": 0,
                                                  "month_consumed": 6}  # fmt: skip
            # the warning left the mailbox with the call
            assert (await alice.poll())["data"] == [{"event": "shake_hand"}]
            alice.rtp.close()
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()


@pytest.mark.skipif(SIPP is None, reason="sipp not installed: apt-get install sip-tester")
async def test_two_calls_of_one_account_talk_at_once_on_grants_of_its_balance(
    tmp_path: Path, db_url: str, sms_gateway: SmsGateway
) -> None:
    """An answered call reserves a grant of ``billing.grant_minutes``, not the whole balance:
    the account's second call starts and talks beside it, and both outlive their first grant
    (CONTRACT §8: at most ``max_concurrent_paid_calls`` paid calls, never an overdraft)."""
    phone_media = await RtpPeer.open()
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_pstn_media.xml", "-p", str(port), "-set", "rtpport",
                         str(phone_media.port), calls=2)  # fmt: skip
    clock = OffsetClock()
    sections = trunk_settings(port, keepalive_s=3600)
    sections["billing"] = {**BROKE["billing"], "warning_s": 0, "grant_minutes": 5}
    try:
        async with server_with_clock(tmp_path, db_url, sms_gateway, clock, **sections) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            billing = server.services.billing
            assert await billing.credit(ALICE, "credit:t2", Balance(coins=6_000))  # 20 minutes
            sids = []
            for _ in range(2):
                started = await alice.call(PHONE_NUMBER, type_="pstn")
                assert started["status"] == "ok", started
                sids.append(started["session_id"])
                seen: list[str] = []
                await statuses_until(alice, sids[-1], "hookoff", seen)
                assert seen[-1] == "hookoff", seen
            held = billing.reservations.held

            async def reserved(cents: int) -> int:
                total = 0
                for _ in range(250):
                    total = sum(r.cents for r in (await held(ALICE)).values())
                    if total == cents:
                        break
                    await asyncio.sleep(0.02)
                return total

            assert await reserved(3_000) == 3_000  # a grant of 5 minutes each
            clock.offset += 290.0  # past the next grant's asking (278 s), before the end (298 s)
            assert await reserved(6_000) == 6_000, "no second grant"
            clock.offset += 20.0  # past where the first grants would have hung up
            await asyncio.sleep(0.5)
            for sid in sids:
                assert (await alice.status(sid))["peer_status"] == "hookoff"
                await alice.hangup(sid)
            await finished(carrier)
            charged: list[int] = []
            for _ in range(200):
                cdrs = await server.services.records.rows(ALICE, 0, 1e12)  # type: ignore[union-attr]
                charged = [c["cost"] for c in cdrs if c["ended_at"] is not None]
                if len(charged) == 2:
                    break
                await asyncio.sleep(0.02)
            assert charged == [1_800, 1_800]  # 310 s each: 6 started minutes at 3 coins
            assert await billing.balance(ALICE) == Balance(coins=2_400)
            assert await held(ALICE) == {}
            alice.rtp.close()
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()
