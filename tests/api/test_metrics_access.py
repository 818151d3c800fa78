"""``/metrics`` refuses strangers: loopback, listed networks and the token holder only."""

from __future__ import annotations

from typing import Any

import httpx

TOKEN = "metrics-token-4f1c9a0e7b2d"
STRANGER = {"X-Forwarded-For": "203.0.113.7"}
PROMETHEUS = {"Accept": "text/plain;version=0.0.4"}
# The test client connects from loopback; a trusted proxy's X-Forwarded-For makes it anyone.
BEHIND_PROXY = {"http": {"trusted_proxies": ["127.0.0.1"]}}


def assert_forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json() == {"status": "failed", "reason": "forbidden"}
    assert "lwork_" not in response.text and "held_polls" not in response.text


async def test_a_stranger_is_refused_by_default_and_loopback_is_served(server_factory: Any) -> None:
    async with server_factory(**BEHIND_PROXY) as server:
        assert_forbidden(await server.get("/metrics", headers=STRANGER))
        assert_forbidden(await server.get("/metrics", headers={**STRANGER, **PROMETHEUS}))
        assert (await server.get("/metrics")).json()["status"] == "ok"
        assert (await server.get("/healthz", headers=STRANGER)).status_code == 200


async def test_the_token_and_the_allow_list_open_it(server_factory: Any) -> None:
    metrics = {"token": TOKEN, "allow_from": ["198.51.100.0/24", "2001:db8::/32"]}
    async with server_factory(**BEHIND_PROXY, metrics=metrics) as server:
        assert_forbidden(await server.get("/metrics", headers=STRANGER))
        wrong = {**STRANGER, "Authorization": "Bearer " + TOKEN[:-1]}
        assert_forbidden(await server.get("/metrics", headers=wrong))
        right = {**STRANGER, **PROMETHEUS, "Authorization": "Bearer " + TOKEN}
        scraped = await server.get("/metrics", headers=right)
        assert scraped.status_code == 200 and "lwork_held_polls" in scraped.text
        for listed in ("198.51.100.9", "2001:db8::5"):
            answer = await server.get("/metrics", headers={"X-Forwarded-For": listed})
            assert answer.json()["status"] == "ok", listed
        outside = await server.get("/metrics", headers={"X-Forwarded-For": "198.51.101.9"})
        assert_forbidden(outside)


async def test_public_metrics_are_served_to_anyone(server_factory: Any) -> None:
    async with server_factory(**BEHIND_PROXY, metrics={"public": True}) as server:
        assert (await server.get("/metrics", headers=STRANGER)).json()["status"] == "ok"
