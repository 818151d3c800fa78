"""SMS codes hold against parallel guessing: every check spends an attempt atomically."""

from __future__ import annotations

import asyncio

from conftest import LiveServer

PWD = "e10adc3949ba59abbe56e057f20f883e"


async def test_parallel_wrong_guesses_burn_the_code(server: LiveServer) -> None:
    phone = "13800000100"
    await server.post("/lwork/sms/auth_code", {"uuid": phone, "type": "register"})
    code = server.gateway.last_code(phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    body = {"uuid": phone, "device_id": "d", "pwd": PWD, "group_id": "common"}

    answers = await asyncio.gather(
        *(server.post("/lwork/mobile/register", {**body, "auth_code": wrong}) for _ in range(25))
    )
    assert {r.json()["reason"] for r in answers} == {"invalid_auth_code"}
    # max_attempts (5) wrong guesses in whatever interleaving burned the code for good
    r = await server.post("/lwork/mobile/register", {**body, "auth_code": code})
    assert r.json() == {"status": "failed", "reason": "invalid_auth_code"}
