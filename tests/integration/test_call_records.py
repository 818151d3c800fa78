"""Every call leg leaves one record, answered or not, in every direction (CONTRACT §9), and
parallel calls cannot spend one balance twice (CONTRACT §8): through real HTTP, sipp as the
carrier and real UDP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_p2p_calls import ALICE, BOB, FAST, make_app, two_apps
from test_sip_trunk import free_udp_port
from test_trunk_calls import (
    PHONE_NUMBER,
    SIPP,
    finished,
    first_invitation,
    sipp,
    statuses_until,
    trunk_settings,
)

from conftest import LiveServer
from fakes.rtp_peer import eventually

pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp not installed: apt-get install sip-tester"
)
Factory = Callable[..., Any]


async def closed_records(server: LiveServer, uuid: str, count: int) -> list[dict[str, Any]]:
    records = server.services.records
    assert records is not None
    rows: list[dict[str, Any]] = []
    for _ in range(200):
        rows = await records.rows(uuid, 0, 1e12)
        if len(rows) == count and all(row["ended_at"] is not None for row in rows):
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError(f"records not closed: {rows}")


async def test_an_app_to_app_call_leaves_a_p2p_record(server_factory: Factory) -> None:
    async with server_factory(**FAST) as server, two_apps(server) as (alice, bob):
        sid = (await alice.call(BOB))["session_id"]
        opdata = (await bob.poll())["data"][0]["opdata"]
        sdp = {"ip": [], "port": bob.rtp.port}
        answer = await bob.post("p2p_answer", {"opdata": opdata, "sdp": sdp})
        assert answer["status"] == "ok"
        records = server.services.records
        assert records is not None
        [opened] = await records.rows(ALICE, 0, 1e12)  # opened at the answer
        assert (opened["kind"], opened["ended_at"]) == ("p2p", None)
        started = opdata  # the caller's relay address, as pushed to the callee
        alice.send((started["ip"], started["port"]), 50, ssrc=0xA11CE)
        await asyncio.sleep(0.3)
        await alice.hangup(sid)  # nobody read the call's status: no cached statistics
        [row] = await closed_records(server, ALICE, 1)
        assert (row["id"], row["kind"], row["caller"], row["callee"]) == (sid, "p2p", ALICE, BOB)
        assert row["answered_at"] is not None and row["end_reason"] == "hangup_caller"
        assert (row["minutes"], row["cost"], row["node"]) == (0, 0, "n1")
        assert row["mos"] > 4 and row["loss"] == 0 and row["jitter_ms"] is not None


async def test_a_busy_phone_leaves_an_unanswered_uncharged_record(
    server_factory: Factory, tmp_path: Path
) -> None:
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_busy.xml", "-p", str(port))
    try:
        async with server_factory(**trunk_settings(port)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            sid = (await alice.call(PHONE_NUMBER, type_="pstn"))["session_id"]
            await finished(carrier)
            [row] = await closed_records(server, ALICE, 1)
            assert (row["id"], row["kind"], row["answered_at"], row["sip_status"]) == (
                sid, "out", None, 486,
            )  # fmt: skip
            assert row["caller_id"] == ALICE and row["started_at"] <= row["ended_at"]
            assert (row["billsec"], row["minutes"], row["cost"]) == (0, 0, 0)
            alice.rtp.close()
    finally:
        if carrier.returncode is None:
            carrier.kill()


async def test_a_phone_calling_an_app_leaves_an_in_record(
    server_factory: Factory, tmp_path: Path
) -> None:
    async with server_factory(**trunk_settings(free_udp_port())) as server:
        bob = await make_app(server, BOB, "bob-phone")
        await bob.poll()
        assert server.services.sip_address is not None
        target = "{}:{}".format(*server.services.sip_address)
        carrier = await sipp(tmp_path, "uac_call_app.xml", "-s", BOB, target)
        try:
            opdata = (await first_invitation(bob)).get("opdata", {})
            assert await bob.post("p2p_ringing", {"opdata": opdata}) == {"status": "ok"}
            answer = {"opdata": opdata, "sdp": {"ip": [], "port": bob.rtp.port}}
            assert (await bob.post("p2p_answer", answer))["status"] == "ok"
            await finished(carrier)  # sipp hangs up
            [row] = await closed_records(server, BOB, 1)
            assert (row["id"], row["kind"], row["uuid"]) == (opdata["session_id"], "in", BOB)
            assert row["callee"].endswith(BOB)  # as the carrier dialled it (E.164)
            assert row["caller"] and row["sip_status"] == 200 and row["answered_at"] is not None
            assert row["end_reason"] == "remote_bye" and row["cost"] == 0
        finally:
            bob.rtp.close()
            if carrier.returncode is None:
                carrier.kill()


async def test_parallel_calls_cannot_spend_one_balance_twice(server_factory: Factory) -> None:
    """The attack: start calls at once on a balance that pays one minute. Before reservations
    every one of them passed the check and could talk that minute."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a carrier that never answers
    silent.bind(("127.0.0.1", 0))
    one_minute = {"billing": {"signup_gift_coins": 3, "max_concurrent_paid_calls": 2}}
    try:
        async with server_factory(**trunk_settings(silent.getsockname()[1]), **one_minute
                                  ) as server:  # fmt: skip
            alice = await make_app(server, ALICE, "alice-phone")
            started = await asyncio.gather(*(alice.call(PHONE_NUMBER, type_="pstn")
                                              for _ in range(4)))  # fmt: skip
            assert sorted(s["status"] for s in started) == ["failed", "failed", "failed", "ok"]
            assert {s.get("reason") for s in started} == {None, "balance_not_enough"}
            [ok] = [s for s in started if s["status"] == "ok"]
            await alice.hangup(ok["session_id"])
            assert await eventually(lambda: server.services.calls.active == 0, 5)
            # the hang-up released the reservation: the same minute pays the next call
            await closed_records(server, ALICE, 1)
            again = await alice.call(PHONE_NUMBER, type_="pstn")
            assert again["status"] == "ok", again
            await alice.hangup(again["session_id"])
            alice.rtp.close()
    finally:
        silent.close()


async def test_at_most_the_allowed_paid_calls_per_account(server_factory: Factory) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        async with server_factory(**trunk_settings(silent.getsockname()[1])) as server:
            alice = await make_app(server, ALICE, "alice-phone")  # 100 minutes of coins
            first = await alice.call(PHONE_NUMBER, type_="pstn")
            second = await alice.call(PHONE_NUMBER, type_="pstn")
            third = await alice.call(PHONE_NUMBER, type_="pstn")
            assert (first["status"], second["status"]) == ("ok", "ok")
            assert third == {"status": "failed", "reason": "balance_not_enough"}
            for call in (first, second):
                await alice.hangup(call["session_id"])
            alice.rtp.close()
    finally:
        silent.close()


async def test_an_answered_call_reserves_its_cap_so_no_second_call_can_spend_it(
    server_factory: Factory, tmp_path: Path
) -> None:
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_answer.xml", "-p", str(port))
    two_minutes = {"billing": {"signup_gift_coins": 6}}
    try:
        async with server_factory(**trunk_settings(port), **two_minutes) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            first = (await alice.call(PHONE_NUMBER, type_="pstn"))["session_id"]
            seen: list[str] = []
            await statuses_until(alice, first, "hookoff", seen)
            assert seen[-1] == "hookoff"
            # answered, the first call may talk both minutes and holds them: none left to start
            refused = await alice.call(PHONE_NUMBER, type_="pstn")
            assert refused == {"status": "failed", "reason": "balance_not_enough"}
            await alice.hangup(first)
            await finished(carrier)
            [row] = await closed_records(server, ALICE, 1)
            assert row["minutes"] == 1 and row["cost"] == 300
            assert (await alice.call(PHONE_NUMBER, type_="pstn"))["status"] == "ok"  # 1 left
            alice.rtp.close()
    finally:
        if carrier.returncode is None:
            carrier.kill()
