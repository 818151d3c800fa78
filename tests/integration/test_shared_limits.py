"""The rate limits hold for the whole machine under ``http.workers = 2`` (issue 17): an attacker
whose many connections the kernel spreads over both workers gets the limit (give or take the
documented overshoot, ``lwork.ratelimit.SharedRateLimiter``), not twice the limit, and a client
that one worker serves gets the whole limit, not half of it.

Each part comes from its own client address (``X-Forwarded-For`` from a trusted proxy), so the
parts do not share a count.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from fakes.operator_browser import csrf_of
from fakes.sms_gateway import SmsGateway
from fakes.workers import environment, serve

M = "/lwork/mobile/"
WORKERS = 2


def most(limit: int) -> int:
    """What two workers may let through at worst (``SharedRateLimiter``'s figure for reports
    a whole period late; the hub's usually come within milliseconds: the limit + 2)."""
    return int(limit * 1.15 + 4)


def limited(sms_gateway: SmsGateway, **extra: str) -> dict[str, str]:
    return environment(sms_gateway, LWORK_HTTP__TRUSTED_PROXIES='["127.0.0.1"]', **extra)


def from_(address: str) -> dict[str, str]:
    return {"x-forwarded-for": address}


async def test_the_request_rate_per_address_holds_over_all_workers(
    sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    limit = 40
    env = limited(sms_gateway, LWORK_HTTP__IP_RATE_PER_MINUTE=str(limit))
    async with serve(tmp_path, env) as served:
        # a burst over new connections, which the kernel spreads over both workers
        client = served.anywhere()
        answers = await asyncio.gather(
            *(client.get(M + "version_no", headers=from_("198.51.100.7")) for _ in range(150))
        )
        passed = sum(r.status_code != 429 for r in answers)
        assert {r.status_code for r in answers} == {200, 429}
        assert limit // 2 <= passed <= most(limit), passed
        # what is left of the limit, either worker gives; then both refuse
        pinned = [await served.pinned(worker) for worker in range(WORKERS)]
        refused = [0] * WORKERS
        for n in range(2 * limit):
            r = await pinned[n % WORKERS].get(M + "version_no", headers=from_("198.51.100.7"))
            passed += r.status_code == 200
            refused[n % WORKERS] += r.status_code == 429
            await asyncio.sleep(0.05)
        assert limit <= passed <= most(limit), passed
        assert refused[0] > 0 and refused[1] > 0 and r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1


async def test_login_guesses_per_address_hold_over_all_workers(
    sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    limit = 10
    env = limited(sms_gateway, LWORK_AUTH__LOGIN_PER_MINUTE_PER_IP=str(limit))
    async with serve(tmp_path, env) as served:
        # an attacker's guesses over many connections
        client = served.anywhere()
        answers = await asyncio.gather(*(guess(client, "198.51.100.8", n) for n in range(40)))
        passed = sum(r.status_code != 429 for r in answers)
        assert limit // 2 <= passed <= most(limit), passed

        # a client one worker serves gets the whole limit (paced well past the exchange
        # period, so each attempt comes in a period of its own)
        pinned = await served.pinned(0)
        statuses = []
        for n in range(limit + 2):
            statuses.append((await guess(pinned, "198.51.100.9", n)).status_code)
            await asyncio.sleep(0.25)
        assert statuses.count(429) == 2 and statuses[-2:] == [429, 429], statuses


async def guess(client: httpx.AsyncClient, address: str, n: int) -> httpx.Response:
    body = {"acc": f"1370000{n:04d}", "pwd": "x" * 32, "device_id": "phone"}
    return await client.post(M + "login", json=body, headers=from_(address))


async def test_console_sign_in_guesses_hold_over_all_workers(
    sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    limit = 6
    env = limited(sms_gateway, LWORK_ADMIN__SIGN_IN_PER_MINUTE=str(limit))
    async with serve(tmp_path, env) as served:
        # by address: one address trying many names over many connections
        client = served.anywhere()
        csrf = csrf_of(await client.get("/admin/sign-in"))
        answers = await asyncio.gather(
            *(sign_in(client, csrf, "203.0.113.5", f"user{n}") for n in range(30))
        )
        passed = sum(r.status_code == 401 for r in answers)
        assert {r.status_code for r in answers} == {401, 429}
        assert passed <= most(limit), passed

        # by name: one name's wrong passwords from many addresses, over many connections
        statuses = [
            (await sign_in(client, csrf, f"198.51.100.{n}", "alice")).status_code for n in range(30)
        ]
        assert statuses.count(401) <= most(limit) and statuses[-1] == 429, statuses


async def sign_in(client: httpx.AsyncClient, csrf: str, address: str, name: str) -> httpx.Response:
    data = {"csrf": csrf, "name": name, "password": "wrong-password"}
    return await client.post("/admin/sign-in", data=data, headers=from_(address))


async def test_with_redis_as_the_bus_the_hub_still_shares_the_limits(
    sms_gateway: SmsGateway, tmp_path: Path, redis_url: str
) -> None:
    limit = 20
    env = limited(sms_gateway, LWORK_HTTP__IP_RATE_PER_MINUTE=str(limit), LWORK_BUS__URL=redis_url)
    async with serve(tmp_path, env) as served:
        assert "bus redis" in served.log.read_text()
        client = served.anywhere()
        passed = 0
        for _ in range(8):  # bursts, which get shares of what remains
            answers = await asyncio.gather(
                *(client.get(M + "version_no", headers=from_("198.51.100.10")) for _ in range(20))
            )
            passed += sum(r.status_code == 200 for r in answers)
            await asyncio.sleep(0.2)
        assert limit <= passed <= most(limit), passed
