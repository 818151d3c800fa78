"""Toll-fraud controls through the real wire: HTTP to a live server, its SIP trunk toward a
carrier socket that records every request, and ``lwork fraud`` as a separate process on the
same database (CONTRACT §6.3, README "Toll fraud")."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from test_p2p_calls import ALICE, BOB, make_app
from test_trunk_calls import PHONE_NUMBER, statuses_until, trunk_settings

from lwork.accounts.provisioning import ProvisioningService
from lwork.calls.records import CallRecord

from conftest import LiveServer
from fakes.rtp_peer import eventually

Factory = Callable[..., Any]
CALLBACK = "/lwork/mobile/callback"
CAROL = "13700000003"


class Carrier(asyncio.DatagramProtocol):
    """The carrier's proxy, never answering: it keeps the SIP requests lwork sends it."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.requests.append(data.decode(errors="replace"))

    def invites(self) -> set[str]:
        """The request lines of the INVITEs received (retransmissions once)."""
        return {r.split("\r\n", 1)[0] for r in self.requests if r.startswith("INVITE ")}


@asynccontextmanager
async def carrier() -> AsyncIterator[tuple[int, Carrier]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Carrier, local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1], protocol
    finally:
        transport.close()


async def lwork_cli(server: LiveServer, *args: str) -> tuple[int, str]:
    """``lwork`` as the operator runs it, on the live server's database."""
    env = {**os.environ, "LWORK_DATA_DIR": str(server.settings.data_dir),
           "LWORK_DATABASE__URL": server.settings.database.url}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lwork", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def callback(server: LiveServer, body: dict[str, Any]) -> Any:
    return (await server.post(CALLBACK, body)).json()


async def hang_up_callback(server: LiveServer, sid: str) -> None:
    r = await server.client.delete(server.url + CALLBACK, params={"session_id": sid})
    assert r.json() == {"status": "ok"}


async def test_a_callback_rings_only_the_users_own_phone_unless_the_operator_allows(
    server_factory: Factory,
) -> None:
    async with carrier() as (port, proxy), server_factory(**trunk_settings(port)) as server:
        alice = await make_app(server, ALICE, "alice-phone")
        alice.rtp.close()
        # the original bridged any two numbers on the user's coins: here bob's phone
        body = {"uuid": ALICE, "local": BOB, "remote": PHONE_NUMBER}
        assert await callback(server, body) == {"status": "failed", "reason": "invalid_phone"}
        await asyncio.sleep(0.3)
        assert proxy.invites() == set()  # nothing was dialled

        own = await callback(server, {**body, "local": "0044 " + ALICE})  # her own, spelt so
        assert own["status"] == "ok"
        assert await eventually(lambda: proxy.invites(), 5)
        assert [line.split("@")[0] for line in proxy.invites()] == ["INVITE sip:+4413800000001"]
        await hang_up_callback(server, own["session_id"])

        code, out = await lwork_cli(server, "fraud", "set", ALICE, "--callback-local", BOB)
        assert code == 0, out
        assert "callback local: own number, bound DID, 13900000002" in out
        allowed = await callback(server, body)  # the running server reads the override
        assert allowed["status"] == "ok"
        assert await eventually(lambda: len(proxy.invites()) == 2, 5)
        assert any(line.startswith("INVITE sip:+4413900000002@") for line in proxy.invites())
        await hang_up_callback(server, allowed["session_id"])


async def test_a_dth_callback_rings_the_bound_did_not_the_provisioned_number(
    server_factory: Factory,
) -> None:
    sdn, did, pwd = "02150001234", "13911112222", "e10adc3949ba59abbe56e057f20f883e"
    async with carrier() as (port, proxy), server_factory(**trunk_settings(port)) as server:
        provisioning = ProvisioningService(server.services.account_store, server.services.passwords)
        await provisioning.open(sdn, "boss-pw", "dth", time.time())
        await provisioning.bind(sdn, did)
        r = await server.post("/lwork/mobile/register", {"uuid": sdn, "device_id": "d",
                              "pwd": pwd, "group_id": "dth", "auth_code": "boss-pw"})  # fmt: skip
        assert r.json() == {"status": "ok"}
        r = await server.post("/lwork/mobile/login", {"acc": sdn, "pwd": pwd, "device_id": "d"})
        assert r.json()["status"] == "ok"
        async with server.polling(sdn, "d"):  # the app is online: its address may spend
            pass
        body = {"uuid": sdn, "local": sdn, "remote": PHONE_NUMBER}
        assert await callback(server, body) == {"status": "failed", "reason": "invalid_phone"}
        started = await callback(server, {**body, "local": did})
        assert started["status"] == "ok"
        assert await eventually(lambda: proxy.invites(), 5)
        assert [line.split("@")[0] for line in proxy.invites()] == [f"INVITE sip:+44{did}"]
        await hang_up_callback(server, started["session_id"])


async def test_denied_destinations_are_refused_before_any_invite(
    server_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lwork")
    fraud = {"common": {"allow_prefixes": ["+44"], "deny_prefixes": ["+", "+449", "+44139"]}}
    async with (
        carrier() as (port, proxy),
        server_factory(**trunk_settings(port, p2p_fallback_s=0.3), fraud=fraud) as server,
    ):
        alice = await make_app(server, ALICE, "alice-phone")
        bob = await make_app(server, BOB, "bob-phone")
        refused = {"status": "failed", "reason": "invalid_phone"}
        assert await alice.call("09001234567", type_="pstn") == refused  # +44 9: premium
        assert await alice.call("0012125550100", type_="pstn") == refused  # +1: abroad
        assert await alice.call("*100#", type_="pstn") == refused  # not a phone number
        assert await callback(server, {"uuid": ALICE, "local": ALICE, "remote": "09001234567"}
                              ) == refused  # fmt: skip

        # an app call to bob (reachable, silent) falls back to his phone: +44 139… is denied
        await bob.poll()
        sid = (await alice.call(BOB))["session_id"]
        seen: list[str] = []
        await statuses_until(alice, sid, "release", seen)
        assert seen[-1] == "release"
        assert any(sid in r.message and "invalid_phone" in r.message for r in caplog.records)
        assert proxy.invites() == set()

        started = await alice.call(PHONE_NUMBER, type_="pstn")  # +44 20: allowed
        assert started["status"] == "ok"
        assert await eventually(lambda: proxy.invites(), 5)
        assert [line.split("@")[0] for line in proxy.invites()] == ["INVITE sip:+442079460000"]
        await alice.hangup(started["session_id"])
        for app in (alice, bob):
            app.rtp.close()


async def settle_call(server: LiveServer, sid: str, seconds: float) -> None:
    """A call of alice's that has just ended, charged as the call service charges it."""
    now = time.time()
    record = CallRecord(id=sid, account=ALICE, kind="out", caller=ALICE, callee=PHONE_NUMBER,
                        caller_id=ALICE, started_at=now - seconds, answered_at=now - seconds,
                        ended_at=now, end_reason="hangup_caller")  # fmt: skip
    assert server.services.records is not None
    tariff = await server.services.billing.tariff(ALICE, "call")
    assert await server.services.records.close(record, tariff, now) is not None


async def test_the_daily_cap_refuses_calls_until_the_operator_raises_it(
    server_factory: Factory,
) -> None:
    async with server_factory(fraud={"common": {"daily_cap": 5}}) as server:
        alice = await make_app(server, ALICE, "alice-phone")
        assert (await alice.call(PHONE_NUMBER, type_="pstn"))["status"] == "ok"
        await settle_call(server, "n1@@" + "1" * 32, 50)  # 3 coins spent today
        refused = {"status": "failed", "reason": "balance_not_enough"}
        assert await alice.call(PHONE_NUMBER, type_="pstn") == refused  # 3 + 3 > 5
        assert await callback(server, {"uuid": ALICE, "local": ALICE, "remote": PHONE_NUMBER}
                              ) == refused  # fmt: skip
        # the balance (297 gift coins) is not the reason: the cap is
        coins = await server.post("/lwork/mobile/get_coin", {"uuid": ALICE})
        assert coins.json()["gift_coins"] == 297

        code, out = await lwork_cli(server, "fraud", "set", ALICE, "--daily-cap", "10")
        assert code == 0, out
        assert "daily cap: 10 coins (spent today: 3 coins)" in out
        assert (await alice.call(PHONE_NUMBER, type_="pstn"))["status"] == "ok"
        alice.rtp.close()


async def test_call_velocity_blocks_the_account_and_then_the_range(
    server_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "lwork.fraud")
    fraud = {"common": {"calls_per_minute": 3}, "prefix_calls_per_minute": 4, "block_s": 600}
    async with server_factory(fraud=fraud) as server:
        alice = await make_app(server, ALICE, "alice-phone")
        bob = await make_app(server, BOB, "bob-phone")
        for _ in range(3):
            assert (await alice.call(PHONE_NUMBER, type_="pstn"))["status"] == "ok"
        blocked = {"status": "failed", "reason": "not_actived"}
        assert await alice.call(PHONE_NUMBER, type_="pstn") == blocked  # a 4th within 60 s
        assert await alice.call(CAROL, type_="pstn") == blocked  # any number: she is blocked
        [alarm] = [r for r in caplog.records if "FRAUD ALARM" in r.message]
        assert alarm.levelno == logging.WARNING
        assert f"account {ALICE} blocked" in alarm.message and "4 calls in 60 s" in alarm.message

        # PHONE_NUMBER's range (+8602079) has had 3 calls: bob's first is the 4th, the 5th trips
        assert (await bob.call(PHONE_NUMBER, type_="pstn"))["status"] == "ok"
        refused = {"status": "failed", "reason": "invalid_phone"}
        assert await bob.call("02079469999", type_="pstn") == refused
        assert "prefix +8602079 blocked" in caplog.records[-1].message
        assert "5 calls in 60 s to +8602079" in caplog.records[-1].message
        assert await bob.call(PHONE_NUMBER, type_="pstn") == refused  # blocked, for everyone
        assert (await bob.call(CAROL, type_="pstn"))["status"] == "ok"  # other ranges are not

        code, out = await lwork_cli(server, "fraud", "alarms")
        assert code == 0, out
        lines = out.strip().splitlines()
        assert len(lines) == 2 and all("BLOCKED until" in line for line in lines)
        assert f"account {ALICE}" in lines[0] and "prefix +8602079" in lines[1]
        code, out = await lwork_cli(server, "fraud", "unblock", ALICE)
        assert code == 0 and "1 block(s) ended" in out
        assert (await alice.call(CAROL, type_="pstn"))["status"] == "ok"
        for app in (alice, bob):
            app.rtp.close()


async def test_spending_fast_blocks_the_account(
    server_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "lwork.fraud")
    async with server_factory(fraud={"common": {"spend_per_minute": 5}}) as server:
        alice = await make_app(server, ALICE, "alice-phone")
        await settle_call(server, "n1@@" + "1" * 32, 3000)  # one long call: a 50th of 150
        assert (await alice.call(PHONE_NUMBER, type_="pstn"))["status"] == "ok"
        for n in (2, 3):  # two short calls in parallel that just ended: 6 coins a minute
            await settle_call(server, "n1@@" + str(n) * 32, 50)
        assert await alice.call(PHONE_NUMBER, type_="pstn") == {
            "status": "failed", "reason": "not_actived"
        }  # fmt: skip
        assert any("FRAUD ALARM" in r.message and ALICE in r.message for r in caplog.records)
        alice.rtp.close()


async def test_sms_codes_go_only_to_allowed_numbers(server_factory: Factory) -> None:
    fraud = {"common": {"sms_allow_prefixes": ["+8613"], "sms_deny_prefixes": ["+"]}}
    async with server_factory(fraud=fraud) as server:
        for number in ("0044 7700 900123", "12590123456"):
            r = await server.post("/lwork/sms/auth_code", {"uuid": number, "type": "register"})
            assert r.json() == {"status": "failed", "reason": "sms_failed"}
        assert server.gateway.received == []  # the SMS gateway was never asked
        r = await server.post("/lwork/sms/auth_code", {"uuid": ALICE, "type": "register"})
        assert r.json() == {"status": "ok"} and len(server.gateway.received) == 1


async def test_the_fraud_commands_refuse_bad_input(server_factory: Factory) -> None:
    async with server_factory() as server:
        await make_app(server, ALICE, "alice-phone")
        for args, error in ((("set", ALICE, "--allow-prefix", "86"), "not an E.164 prefix"),
                            (("set", ALICE, "--daily-cap", "-1"), "--daily-cap takes"),
                            (("set", ALICE, "--callback-local", "abc"), "phone numbers"),
                            (("show", "13999999999"), "does not exist")):  # fmt: skip
            code, out = await lwork_cli(server, "fraud", *args)
            assert code == 1 and error in out, out
        code, out = await lwork_cli(server, "fraud", "set", ALICE, "--allow-prefix", "+852",
                                    "--deny-prefix", "+86168", "--daily-cap", "2.5")  # fmt: skip
        assert code == 0, out
        assert out.splitlines()[:4] == [
            f"{ALICE} (common)",
            "daily cap: 2.50 coins (spent today: 0 coins)",
            "call destinations: allow +852; deny +86168",
            "sms destinations: everything",
        ]
        assert "override: daily cap 2.50 coins; allow +852; deny +86168" in out
        code, out = await lwork_cli(server, "fraud", "set", ALICE, "--reset")
        assert code == 0 and "override: none" in out and "daily cap: none" in out
        assert (await lwork_cli(server, "fraud", "alarms"))[1].strip() == "no alarms"
