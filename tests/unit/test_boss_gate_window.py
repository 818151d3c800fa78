"""The BOSS gate's timestamp window at its exact edges, with the wall clock passed in: the
API test (tests/api/test_boss_refusals.py) stays clear of the edge because a real clock moves
while it runs."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.boss.gate import BossGate
from lwork.boss.operations import Refusal
from lwork.boss.signing import sign
from lwork.boss.store import BossStore

SECRET = "boss-secret-0123456789"
NOW = 1_800_000_000
PATH = "/lwork/boss/v1/minutes"
BODY = b'{"account":"02150001234"}'


def headers(timestamp: int) -> dict[str, str]:
    stamp = str(timestamp)
    return {
        "x-lwork-key": "billing",
        "x-lwork-timestamp": stamp,
        "x-lwork-signature": sign(SECRET, stamp, "POST", PATH, BODY),
    }


@pytest.mark.parametrize("offset", [-300, 300, 0])
async def test_a_timestamp_up_to_the_window_away_is_admitted(
    engine: AsyncEngine, offset: int
) -> None:
    gate = BossGate({"billing": [SECRET]}, ["127.0.0.0/8"], 300, BossStore(engine), lambda: NOW)
    assert await gate.admit(headers(NOW + offset), "POST", PATH, BODY) == "billing"


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
async def test_a_timestamp_one_second_past_the_window_is_stale(
    engine: AsyncEngine, offset: int
) -> None:
    gate = BossGate({"billing": [SECRET]}, ["127.0.0.0/8"], 300, BossStore(engine), lambda: NOW)
    with pytest.raises(Refusal) as refusal:
        await gate.admit(headers(NOW + offset), "POST", PATH, BODY)
    assert refusal.value.reason == "stale_timestamp"
