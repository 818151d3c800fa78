"""The labelled series of ``/metrics`` (issue #16 item 2) count what happened, through real
HTTP, real UDP and sipp as the carrier: HTTP latency and answers per route, a call's set-up time
and its end by kind and reason, the carrier's answers, SMS codes sent; and a stranger's made-up
paths add no series."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_call_records import closed_records
from test_p2p_calls import ALICE, BOB, FAST, App, make_app, two_apps
from test_sip_trunk import free_udp_port
from test_trunk_calls import PHONE_NUMBER, SIPP, finished, sipp, trunk_settings

from lwork.media.relay.rtp import RtpPacket

from conftest import LiveServer

pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp not installed: apt-get install sip-tester"
)
Factory = Callable[..., Any]
PROMETHEUS = {"Accept": "text/plain;version=0.0.4"}


async def scrape(server: LiveServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = (await server.get("/metrics", headers=PROMETHEUS)).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(series: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    return series.get((name, frozenset(labels.items())), 0.0)


async def delivered_while_held(server: LiveServer, bob: App) -> None:
    """An event for Bob while his poll is held: the held poll answers it."""
    held = asyncio.create_task(bob.poll())
    for _ in range(200):
        if server.services.polls.held:
            break
        await asyncio.sleep(0.01)
    await server.services.push.notify(BOB, {"event": "while held"})
    assert (await held)["data"] == [{"event": "while held"}]


async def test_a_call_its_requests_and_its_end_are_counted(server_factory: Factory) -> None:
    async with server_factory(**FAST) as server, two_apps(server) as (alice, bob):
        sid = (await alice.call(BOB))["session_id"]
        opdata = (await bob.poll())["data"][0]["opdata"]
        await bob.post("p2p_ringing", {"opdata": opdata})
        sdp = {"ip": [], "port": bob.rtp.port}
        assert (await bob.post("p2p_answer", {"opdata": opdata, "sdp": sdp}))["status"] == "ok"
        relay = (opdata["ip"], opdata["port"])  # the caller's side of the relay
        for n in range(200):
            if n % 4 != 3:  # a quarter of the packets lost on the way
                alice.rtp.send_rtp(RtpPacket(102, n, n * 160, 0xA11CE, payload=bytes(32)), relay)
        for _ in range(100):
            status = await alice.status(sid)
            if status["stats"].get("pr", 0) >= 150:
                break
            await asyncio.sleep(0.05)
        live = await scrape(server)
        await alice.hangup(sid)
        await closed_records(server, ALICE, 1)
        series = await scrape(server)
    calls = "POST /lwork/mobile/voip/calls"
    assert value(series, "lwork_http_responses_total", route=calls, code="200") == 1
    assert value(series, "lwork_http_request_duration_seconds_count", route=calls) == 1
    assert value(series, "lwork_http_request_duration_seconds_bucket", route=calls, le="+Inf") == 1
    assert value(series, "lwork_calls_ended_total", kind="p2p", reason="hangup_caller",
                 answered="yes") == 1  # fmt: skip
    assert value(series, "lwork_call_setup_seconds_count", kind="p2p") == 1
    setup_s = value(series, "lwork_call_setup_seconds_sum", kind="p2p")
    assert 0 < setup_s < 10
    assert value(series, "lwork_sms_total", outcome="sent") == 2  # the two apps registered
    assert 0.15 < value(live, "lwork_relay_loss_ratio") < 0.35
    assert value(series, "lwork_relay_loss_ratio") == 0  # no live call left


async def test_the_carriers_answers_and_an_unanswered_phone_call(
    server_factory: Factory, tmp_path: Path
) -> None:
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_busy.xml", "-p", str(port))
    try:
        async with server_factory(**trunk_settings(port)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            await alice.call(PHONE_NUMBER, type_="pstn")
            await finished(carrier)
            await closed_records(server, ALICE, 1)
            series = await scrape(server)
            alice.rtp.close()
    finally:
        if carrier.returncode is None:
            carrier.kill()
    assert value(series, "lwork_sip_invite_outcomes_total", code="486") == 1
    assert value(series, "lwork_calls_ended_total", kind="out", reason="sip_486",
                 answered="no") == 1  # fmt: skip


async def test_made_up_paths_share_one_series(server_factory: Factory) -> None:
    async with server_factory() as server:
        for _ in range(30):
            await server.get(f"/lwork/{secrets.token_hex(8)}")
        await asyncio.sleep(0)
        series = await scrape(server)
    routes = {dict(labels).get("route") for name, labels in series
              if name == "lwork_http_responses_total"}  # fmt: skip
    assert value(series, "lwork_http_responses_total", route="unrouted", code="404") == 30
    assert routes <= {"unrouted", "GET /metrics"}


async def test_event_delivery_times_to_a_held_poll_and_to_the_next_poll(
    server_factory: Factory,
) -> None:
    """``lwork_push_delivery_seconds``: an event a held poll takes is counted under ``held``
    within milliseconds; one that waits for the app's next poll, under ``next_poll``, with the
    time it waited."""
    async with server_factory(push={"hold_s": 5}) as server:
        bob = await make_app(server, BOB, "bob-phone")
        await delivered_while_held(server, bob)
        await server.services.push.notify(BOB, {"event": "while away"})
        await asyncio.sleep(0.3)
        assert (await bob.poll())["data"] == [{"event": "while away"}]
        series = await scrape(server)
        bob.rtp.close()
    name = "lwork_push_delivery_seconds"
    assert value(series, name + "_count", path="held") == 1
    assert value(series, name + "_bucket", path="held", le="0.25") == 1
    assert value(series, name + "_count", path="next_poll") == 1
    assert 0.3 <= value(series, name + "_sum", path="next_poll") < 5
    assert value(series, name + "_bucket", path="next_poll", le="0.25") == 0


@pytest.mark.parametrize("enabled", [True, False], ids=["on", "off"])
async def test_metrics_off_keeps_nothing_and_refuses_the_scrape(
    server_factory: Factory, enabled: bool
) -> None:
    """``metrics.enabled = false``: the instrumented paths (an app call set up, polled for its
    status and ended; an event delivered to a held poll; SMS codes) all run, the node keeps no
    sample of any labelled series, and ``/metrics`` answers 404 ``metrics_disabled`` in every
    format. The same run with metrics on shows the read would see what they count."""
    async with server_factory(**FAST, metrics={"enabled": enabled}) as server:
        async with two_apps(server) as (alice, bob):
            await delivered_while_held(server, bob)
            sid = (await alice.call(BOB))["session_id"]
            opdata = (await bob.poll())["data"][0]["opdata"]
            await bob.post("p2p_ringing", {"opdata": opdata})
            sdp = {"ip": [], "port": bob.rtp.port}
            assert (await bob.post("p2p_answer", {"opdata": opdata, "sdp": sdp}))["status"] == "ok"
            for _ in range(5):
                assert (await alice.status(sid))["peer_status"] == "p2p_hookoff"
            await alice.hangup(sid)
            await closed_records(server, ALICE, 1)
        kept = {family.name: len(family.samples) for family in server.services.telemetry.families()}
        answers = [
            await server.get("/metrics", headers=accept)
            for accept in ({}, PROMETHEUS, {"Accept": "application/openmetrics-text"})
        ]
    assert "lwork_http_request_duration_seconds" in kept and len(kept) == 11
    if enabled:
        for name in ("lwork_http_request_duration_seconds", "lwork_http_responses",
                     "lwork_call_setup_seconds", "lwork_push_delivery_seconds",
                     "lwork_calls_ended", "lwork_sms"):  # fmt: skip
            assert kept[name] > 0, name
        assert [r.status_code for r in answers] == [200, 200, 200]
    else:
        assert kept == dict.fromkeys(kept, 0)
        for r in answers:
            assert r.status_code == 404
            assert r.json() == {"status": "failed", "reason": "metrics_disabled"}
