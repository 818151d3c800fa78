"""Requests, and the work timers do, leave no reference cycles behind (README "Memory and
garbage collection").

The GC policy freezes whatever a collection finds alive, so a cycle built while a request ran
is only freed by the policy's hourly complete pass: until then it holds memory, and a node's
RSS climbs with every such request. Counted here with the collector off while the requests
run, then one complete pass: what it finds unreachable is the cycles they left. The requests
go over one raw keep-alive connection (httpx's own responses and streams form cycles, which
would hide the server's).
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from conftest import LiveServer

PWD = "e10adc3949ba59abbe56e057f20f883e"
PHONE = "13800138000"
LOGINS = 40


class RawClient:
    """HTTP/1.1 POSTs of JSON over one connection, read by Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def post(self, path: str, body: Any) -> Any:
        payload = json.dumps(body).encode()
        self._writer.write(
            f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))  # fmt: skip
        return json.loads(await self._reader.readexactly(length))


async def test_logins_leave_no_reference_cycles(server_factory: Callable[..., Any]) -> None:
    # one account logging in again and again, as the soak's accounts do
    limits = {"login_per_minute_per_ip": 10**6, "login_per_hour_per_account": 10**6}
    async with server_factory(auth=limits) as server:
        await _register(server)
        address = urlsplit(server.url)
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        try:
            found = await _cycles_left_by_logins(RawClient(reader, writer))
        finally:
            writer.close()
    # Built per login, its upsert left 76 objects in cycles each time (3,052 here).
    assert found < LOGINS, f"{found} objects in reference cycles after {LOGINS} logins"


async def _register(server: LiveServer) -> None:
    await server.post("/lwork/sms/auth_code", {"uuid": PHONE, "type": "register"})
    body = {"uuid": PHONE, "device_id": "d", "auth_code": server.gateway.last_code(PHONE),
            "pwd": PWD, "group_id": "common"}  # fmt: skip
    assert (await server.post("/lwork/mobile/register", body)).json() == {"status": "ok"}


async def _cycles_left_by_logins(client: RawClient) -> int:
    login = {"acc": PHONE, "pwd": PWD, "device_id": "d"}
    for _ in range(5):  # caches, compiled statements and pools filled first
        answer = await client.post("/lwork/mobile/login", login)
        assert answer["status"] == "ok", answer
    gc.collect()
    gc.disable()
    try:
        for _ in range(LOGINS):
            assert (await client.post("/lwork/mobile/login", login))["status"] == "ok"
        return gc.collect()
    finally:
        gc.enable()


async def test_timed_work_leaves_no_reference_cycles(server_factory: Callable[..., Any]) -> None:
    """The account sweep (every ``calls.account_sweep_s`` on every worker), the payment
    reconciler's rounds and the mailbox's upkeep: built per call, their statements left a
    cycle each time."""
    async with server_factory() as server:
        sweep = server.services.account_store.inactive_among
        reconcile = server.services.payments.reconciler.round
        upkeep = server.services.mailbox.upkeep
        numbers = [f"86138{n:08d}" for n in range(30)]
        for _ in range(3):  # compiled statements and pools filled first
            await sweep(numbers)
            await reconcile()
            await upkeep(time.time())
        gc.collect()
        gc.disable()
        try:
            for _ in range(20):
                await sweep(numbers)
                await reconcile()
                await upkeep(time.time())
            found = gc.collect()
        finally:
            gc.enable()
    # Built per call, the sweep and the reconciler left 20 objects in cycles each round (400
    # here), and PostgreSQL's mailbox upkeep 54 (1,080).
    assert found < 20, f"{found} objects in reference cycles after 20 rounds of each"
