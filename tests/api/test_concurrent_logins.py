"""One live session per account (CONTRACT §3), even when logins race."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from lwork.storage.tables import sessions

from conftest import LiveServer

PWD = "e10adc3949ba59abbe56e057f20f883e"
PHONE = "13800138000"


async def test_racing_logins_leave_one_live_session(server_factory: Callable[..., Any]) -> None:
    # Every guess counts before its check: eight at once from one address would otherwise
    # meet the guess backoff (tested on its own) before the session race this test is about.
    async with server_factory(auth={"login_free_failures": 20}) as server:
        await _race_logins(server)


async def _race_logins(server: LiveServer) -> None:
    await server.post("/lwork/sms/auth_code", {"uuid": PHONE, "type": "register"})
    body = {"uuid": PHONE, "device_id": "d", "auth_code": server.gateway.last_code(PHONE),
            "pwd": PWD, "group_id": "common"}  # fmt: skip
    assert (await server.post("/lwork/mobile/register", body)).json() == {"status": "ok"}
    logins = [
        server.post("/lwork/mobile/login", {"acc": PHONE, "pwd": PWD, "device_id": f"d{n}"})
        for n in range(8)
    ]
    answers = [r.json() for r in await asyncio.gather(*logins)]
    assert [a["status"] for a in answers] == ["ok"] * 8
    async with server.services.engine.connect() as conn:
        live = await conn.scalar(
            select(func.count()).select_from(sessions).where(sessions.c.ended_at.is_(None))
        )
    assert live == 1
    # and only the winner's token still acts for the account
    accepted = []
    for answer in answers:
        headers = {"Authorization": f"Bearer {answer['token']}"}
        r = await server.post("/lwork/mobile/get_coin", {"uuid": PHONE}, headers=headers)
        accepted.append(r.json()["status"] == "ok")
    assert accepted.count(True) == 1
