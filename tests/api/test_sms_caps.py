"""SMS caps that hold: per client (IPv6 by /64), per number range, for the whole service, under
parallel requests and across nodes sharing the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from conftest import LiveServer

PROXY = {"trusted_proxies": ["127.0.0.1"]}


async def send(server: LiveServer, phone: str, client: str) -> httpx.Response:
    return await server.post(
        "/lwork/sms/auth_code",
        {"uuid": phone, "type": "register"},
        headers={"X-Forwarded-For": client},
    )


async def test_an_ipv6_client_rotating_within_its_slash_64_is_one_client(
    server_factory: Callable[..., Any],
) -> None:
    async with server_factory(http=PROXY, sms={"per_ip_per_hour": 3}) as server:
        statuses = [
            (await send(server, f"13{i}00000000", f"2001:db8:1:2::{i + 1:x}")).status_code
            for i in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
        assert (await send(server, "13900000000", "2001:db8:1:3::1")).status_code == 200


async def test_a_number_range_has_its_own_hourly_cap(server_factory: Callable[..., Any]) -> None:
    async with server_factory(http=PROXY, sms={"per_prefix_per_hour": 2}) as server:
        answers = await asyncio.gather(
            *(send(server, f"0088216000{i:04d}", f"198.51.100.{i + 1}") for i in range(8))
        )
        assert sorted(r.status_code for r in answers) == [200] * 2 + [429] * 6
        refused = next(r for r in answers if r.status_code == 429)
        assert refused.json() == {"status": "failed", "reason": "too_many_requests"}
        assert 3000 < int(refused.headers["retry-after"]) <= 3600
        # the same range written another way is the same range
        assert (await send(server, "+882160009999", "198.51.100.50")).status_code == 429
        assert (await send(server, "13900000001", "198.51.100.51")).status_code == 200
        assert len(server.gateway.received) == 3


async def test_the_global_cap_holds_for_parallel_sends_on_two_nodes(
    server_factory: Callable[..., Any],
) -> None:
    settings = {"http": PROXY, "sms": {"global_per_hour": 4}}
    async with server_factory(**settings) as one, server_factory(**settings) as two:
        answers = await asyncio.gather(
            *(send((one, two)[i % 2], f"1{i}000000000", f"203.0.113.{i + 1}") for i in range(10))
        )
        assert sorted(r.status_code for r in answers) == [200] * 4 + [429] * 6
        assert len(one.gateway.received) == 4
