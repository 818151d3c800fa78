"""Requests the BOSS interface refuses (CONTRACT §9): bad signatures, stale or future
timestamps, replays, unknown keys, untrusted sources, oversize or malformed bodies. Each gets
401/403/400/413 with a reason, and changes nothing."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from lwork.boss.audit import AuditTrail

from conftest import LiveServer
from fakes.boss_client import BossClient

SECRET = "boss-secret-0123456789"
SDN = "02150001234"
OPEN = {"request_id": "o-1", "account": SDN, "pwd": "boss-pw"}

Factory = Callable[..., Any]


def settings(**boss: Any) -> dict[str, Any]:
    return {"boss": {"keys": {"billing": [SECRET]}, "allowed_sources": ["127.0.0.0/8"], **boss}}


async def unchanged(server: LiveServer) -> None:
    assert await server.services.account_store.provisioned(SDN) is None
    assert await AuditTrail(server.services.engine).entries() == []


async def refused(response: Any, status_code: int, reason: str) -> None:
    assert response.status_code == status_code, response.text
    assert response.json()["status"] == "failed"
    assert response.json()["reason"] == reason


async def test_signatures_keys_and_timestamps(server_factory: Factory) -> None:
    async with server_factory(**settings()) as server:
        right = BossClient(server.url, "billing", SECRET)
        forger = BossClient(server.url, "billing", "not-the-secret-at-all")
        stranger = BossClient(server.url, "someone", SECRET)
        try:
            await refused(await forger.call("open", OPEN), 401, "bad_signature")
            await refused(await stranger.call("open", OPEN), 401, "unknown_key")
            # The clock is read just before each signing, and 5 s past the 300 s window: a
            # loaded machine can take seconds over the requests before (the CI once did).
            stale = right.signed("open", OPEN, timestamp=int(time.time()) - 305)
            await refused(await right.send(stale), 401, "stale_timestamp")
            future = right.signed("open", OPEN, timestamp=int(time.time()) + 305)
            await refused(await right.send(future), 401, "stale_timestamp")
            # signed for one body, sent with another
            signed = right.signed("open", OPEN)
            tampered = dataclasses.replace(
                signed, body=json.dumps({**OPEN, "pwd": "mine"}).encode()
            )
            await refused(await right.send(tampered), 401, "bad_signature")
            # signed for another operation's path
            moved = dataclasses.replace(right.signed("minutes", OPEN), path="/lwork/boss/v1/open")
            await refused(await right.send(moved), 401, "bad_signature")
            bare = await right.client.post(server.url + "/lwork/boss/v1/open", json=OPEN)
            await refused(bare, 401, "missing_signature")
            not_a_time = {**signed.headers, "X-Lwork-Timestamp": "soon"}
            r = await right.client.post(server.url + signed.path, content=signed.body,
                                        headers=not_a_time)  # fmt: skip
            await refused(r, 401, "bad_timestamp")
            await unchanged(server)
        finally:
            for client in (right, forger, stranger):
                await client.close()


async def test_a_signature_is_used_once_even_across_a_restart(server_factory: Factory) -> None:
    async with server_factory(**settings()) as server:
        boss = BossClient(server.url, "billing", SECRET)
        request = boss.signed("minutes", {"account": SDN})
        try:
            await refused(await boss.send(request), 400, "account_not_exist")
            await refused(await boss.send(request), 401, "replayed_signature")
        finally:
            await boss.close()
    async with server_factory(**settings()) as server:
        boss = BossClient(server.url, "billing", SECRET)
        try:
            await refused(await boss.send(request), 401, "replayed_signature")
        finally:
            await boss.close()


async def test_an_untrusted_source_is_refused(server_factory: Factory) -> None:
    async with server_factory(**settings(allowed_sources=["10.0.0.0/8"])) as server:
        boss = BossClient(server.url, "billing", SECRET)
        try:
            await refused(await boss.call("open", OPEN), 403, "untrusted_source")
            # a forwarded-for header is not believed from a peer that is not a trusted proxy
            request = boss.signed("open", OPEN)
            forwarded = {**request.headers, "X-Forwarded-For": "10.1.2.3"}
            r = await boss.client.post(server.url + request.path, content=request.body,
                                       headers=forwarded)  # fmt: skip
            await refused(r, 403, "untrusted_source")
            await unchanged(server)
        finally:
            await boss.close()


@pytest.mark.parametrize(
    ("body", "status_code", "reason"),
    [
        (b'{"request_id": "o-1", "account": ', 400, "invalid_json"),
        (b"[" * 100 + b"]" * 100, 400, "invalid_json"),
        (json.dumps({**OPEN, "pwd": 7}).encode(), 400, "invalid_params"),
        (json.dumps({"account": SDN, "pwd": "x"}).encode(), 400, "invalid_params"),
        (json.dumps({**OPEN, "group": "common"}).encode(), 400, "invalid_params"),
        (json.dumps({**OPEN, "extra": 1}).encode(), 400, "invalid_params"),
        (json.dumps({**OPEN, "account": "x" * 65}).encode(), 400, "invalid_params"),
        (json.dumps({**OPEN, "account": "not a number"}).encode(), 400, "invalid_phone"),
        (json.dumps({**OPEN, "pwd": "x" * 3000}).encode(), 413, "body_too_large"),
    ],
)
async def test_bodies_that_are_refused(
    server_factory: Factory, body: bytes, status_code: int, reason: str
) -> None:
    async with server_factory(**settings(body_limit=2048)) as server:
        boss = BossClient(server.url, "billing", SECRET)
        try:
            await refused(await boss.call("open", body), status_code, reason)
            assert await server.services.account_store.provisioned(SDN) is None
        finally:
            await boss.close()


async def test_an_unknown_operation_and_other_methods(server_factory: Factory) -> None:
    async with server_factory(**settings()) as server:
        boss = BossClient(server.url, "billing", SECRET)
        try:
            await refused(await boss.call("transfer", OPEN), 404, "unknown_operation")
            r = await boss.client.get(server.url + "/lwork/boss/v1/minutes")
            assert r.status_code in (404, 405) and r.json()["status"] == "failed"
            await unchanged(server)
        finally:
            await boss.close()


async def test_nobody_is_let_in_without_configured_keys(server_factory: Factory) -> None:
    async with server_factory(boss={"allowed_sources": ["127.0.0.0/8"]}) as server:
        boss = BossClient(server.url, "billing", SECRET)
        try:
            await refused(await boss.call("open", OPEN), 401, "unknown_key")
            await unchanged(server)
        finally:
            await boss.close()
