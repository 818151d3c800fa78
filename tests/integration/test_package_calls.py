"""A ``dth`` account's phone calls through the SIP trunk (sipp as the carrier) pay package
minutes expiring first, and expired minutes do not let a call start (CONTRACT §8). The server's
clock is the real one moved forward by the test."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_billing_calls import BROKE, OffsetClock, server_with_clock
from test_p2p_calls import ALICE, PWD, App
from test_sip_trunk import free_udp_port
from test_trunk_calls import PHONE_NUMBER, SIPP, finished, sipp, statuses_until, trunk_settings

from lwork.billing.buckets import Grant
from lwork.billing.rating import Balance
from lwork.storage.tables import minute_buckets

from conftest import LiveServer
from fakes.rtp_peer import RtpPeer, eventually
from fakes.sms_gateway import SmsGateway

pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp not installed: apt-get install sip-tester"
)


async def dth_app(server: LiveServer, now: float) -> App:
    """ALICE opened by the BOSS as ``dth``, registered with its activation password, polled."""
    assert server.services.provisioning is not None
    await server.services.provisioning.open(ALICE, "boss-pw", "dth", now)
    register = {"uuid": ALICE, "device_id": "d", "pwd": PWD, "group_id": "dth",
                "name": "alice", "auth_code": "boss-pw"}  # fmt: skip
    assert (await server.post("/lwork/mobile/register", register)).json()["status"] == "ok"
    r = await server.post("/lwork/mobile/login", {"acc": ALICE, "pwd": PWD, "device_id": "d"})
    assert r.json()["status"] == "ok"
    async with server.polling(ALICE, "d"):
        pass
    return App(server, ALICE, "d", await RtpPeer.open())


async def minutes_left(server: LiveServer) -> list[tuple[int, float | None]]:
    query = select(minute_buckets.c.minutes_left, minute_buckets.c.expires_at).where(
        minute_buckets.c.uuid == ALICE
    )
    async with server.services.engine.connect() as conn:
        rows = [(r.minutes_left, r.expires_at) for r in await conn.execute(query)]
    return sorted(rows, key=lambda r: (r[1] is None, r[1] or 0))


async def test_a_call_pays_the_package_expiring_first_and_expired_minutes_pay_nothing(
    tmp_path: Path, db_url: str, sms_gateway: SmsGateway
) -> None:
    phone_media = await RtpPeer.open()
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_pstn_media.xml", "-p", str(port), "-set", "rtpport",
                         str(phone_media.port))  # fmt: skip
    clock = OffsetClock()
    sections: dict[str, Any] = {**trunk_settings(port, keepalive_s=3600), **BROKE}
    try:
        async with server_with_clock(tmp_path, db_url, sms_gateway, clock, **sections) as server:
            now = clock.wall()
            alice = await dth_app(server, now)
            billing = server.services.billing
            soon, later = now + 3600, now + 7200
            grants = [Grant(5, now, later), Grant(2, now, soon)]
            assert await billing.credit(ALICE, "package:t1", Balance(minutes=7), None, grants)
            assert await billing.credit(ALICE, "credit:t2", Balance(minutes=3))

            started = await alice.call(PHONE_NUMBER, type_="pstn")
            sid = started["session_id"]
            seen: list[str] = []
            await statuses_until(alice, sid, "hookoff", seen)
            assert seen[-1] == "hookoff"
            clock.offset += 150.0  # 2.5 minutes of talk: 3 started minutes
            assert await alice.hangup(sid) == {"status": "ok"}
            await finished(carrier)
            assert await eventually(lambda: sid not in server.services.calls.calls, 5)
            for _ in range(200):  # the record is closed and charged just after the call
                if (await minutes_left(server))[0][0] == 0:
                    break
                await asyncio.sleep(0.02)
            # two from the package expiring first, one from the next; the undated 3 untouched
            assert await minutes_left(server) == [(0, soon), (4, later), (3, None)]

            # past both packages' expiry only the 3 undated minutes are left
            clock.offset += 7200.0
            assert (await billing.balance(ALICE)).minutes == 3
            assert await billing.minutes(ALICE) == (3, "")  # get_coin's figures
            alice.rtp.close()
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()


async def test_minutes_that_expired_do_not_start_a_call(
    tmp_path: Path, db_url: str, sms_gateway: SmsGateway
) -> None:
    clock = OffsetClock()
    sections: dict[str, Any] = {**trunk_settings(free_udp_port(), keepalive_s=3600), **BROKE}
    async with server_with_clock(tmp_path, db_url, sms_gateway, clock, **sections) as server:
        now = clock.wall()
        alice = await dth_app(server, now)
        grants = [Grant(30, now, now + 600)]
        assert await server.services.billing.credit(
            ALICE, "package:t4", Balance(minutes=30), None, grants
        )
        clock.offset += 601.0
        async with server.polling(ALICE, "d"):  # the app is still around, polling
            pass
        refused = await alice.call(PHONE_NUMBER, type_="pstn")
        assert refused == {"status": "failed", "reason": "balance_not_enough"}
        assert await minutes_left(server) == [(30, now + 600)]  # nothing was taken
        alice.rtp.close()
