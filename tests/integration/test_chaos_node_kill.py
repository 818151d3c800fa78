"""``kill -9`` of one of two nodes during calls (issue 17, chaos), CI-sized: the run of
``bench.chaos_bench`` with 10 calls on a fresh PostgreSQL database and a throwaway Redis.

The survivor's calls go on (RTP relayed both ways, status answered), a new call works through
it, the dead node's apps reconnect to it and receive the events raised meanwhile, and the dead
node's open records are closed once, by the survivor, after the lease (its two phone calls to
a sipp carrier charged once each, their carrier legs hung up); its own records stay open."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bench._verdict import Verdict
from bench.chaos_bench import node_kill


@pytest.mark.skipif(
    shutil.which("sipp") is None, reason="sipp not installed: apt-get install sip-tester"
)
async def test_calls_apps_and_records_survive_the_kill_of_one_of_two_nodes(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    verdict = Verdict("chaos_bench")
    figures = await node_kill(verdict, tmp_path, postgres_url, redis_url, calls=10,
                              observe_s=2.0, lease_s=2.0, phone_calls=2)  # fmt: skip
    assert verdict.problems == [], figures
    assert figures["survivor_calls"]["went_on"] == 5
    assert figures["apps_reconnected"] == 10
    assert figures["events"]["events_lost"] == 0 and figures["events"]["events_arrived"] == 20
    records = figures["dead_node_records"]
    assert (records["records"], records["closed_node_lost"], records["charged_twice"]) == (5, 5, 0)
    assert figures["survivor_records_closed_wrongly"] == 0
    paid = figures["dead_node_phone_calls"]
    assert (paid["closed_node_lost"], paid["charged_once"], paid["charged_twice"]) == (2, 2, 0)
    assert paid["carrier_legs_ended"]
