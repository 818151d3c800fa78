"""Which codec each call's carrier leg used, through real HTTP with sipp as the carrier: the
call record keeps it, and a G.711 carrier toward an app, when transcoding is off
(`media.transcoding`), is said out loud rather than left a silent call (CONTRACT §6.4).
With transcoding on: test_g711_e2e.py."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_call_records import closed_records
from test_p2p_calls import ALICE, BOB, make_app
from test_sip_trunk import free_udp_port
from test_trunk_calls import (
    PHONE_NUMBER,
    SIPP,
    finished,
    first_invitation,
    sipp,
    statuses_until,
    trunk_settings,
)

from fakes.rtp_peer import RtpPeer

pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp not installed: apt-get install sip-tester"
)
Factory = Callable[..., Any]
NO_TRANSCODING = {"transcoding": False}


@pytest.mark.parametrize(
    ("scenario", "codec"), [("uas_pstn_pcma.xml", "PCMA"), ("uas_pstn_media.xml", "PCMU")]
)
async def test_a_call_to_a_g711_carrier_records_its_codec_and_warns(
    server_factory: Factory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
    codec: str,
) -> None:
    phone_media = await RtpPeer.open()
    port = free_udp_port()
    carrier = await sipp(tmp_path, scenario, "-p", str(port), "-set", "rtpport",
                         str(phone_media.port))  # fmt: skip
    try:
        with caplog.at_level(logging.WARNING, logger="lwork.calls"):
            async with server_factory(**trunk_settings(port), media=NO_TRANSCODING) as server:
                alice = await make_app(server, ALICE, "alice-phone")
                sid = (await alice.call(PHONE_NUMBER, type_="pstn"))["session_id"]
                seen: list[str] = []
                await statuses_until(alice, sid, "hookoff", seen)
                assert await alice.hangup(sid) == {"status": "ok"}
                await finished(carrier)
                [row] = await closed_records(server, ALICE, 1)
                assert (row["id"], row["kind"], row["carrier_codec"]) == (sid, "out", codec)
                alice.rtp.close()
        warned = [r.getMessage() for r in caplog.records if sid in r.getMessage()]
        assert any(f"the carrier chose {codec}" in m and "transcode" in m for m in warned)
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()


@pytest.mark.parametrize(
    ("scenario", "codec"), [("uac_call_app.xml", "AMR"), ("uac_call_app_pcma.xml", "PCMA")]
)
async def test_a_phone_calling_an_app_records_the_carriers_codec(
    server_factory: Factory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
    codec: str,
) -> None:
    """AMR offered first: AMR, no warning. PCMA alone: accepted by the trunk, which cannot
    answer it in G.711 without transcoding; the record and a warning say so."""
    async with server_factory(**trunk_settings(free_udp_port()), media=NO_TRANSCODING) as server:
        bob = await make_app(server, BOB, "bob-phone")
        await bob.poll()
        assert server.services.sip_address is not None
        target = "{}:{}".format(*server.services.sip_address)
        carrier = await sipp(tmp_path, scenario, "-s", BOB, target)
        try:
            with caplog.at_level(logging.WARNING, logger="lwork.calls"):
                opdata = (await first_invitation(bob)).get("opdata", {})
                assert await bob.post("p2p_ringing", {"opdata": opdata}) == {"status": "ok"}
                answer = {"opdata": opdata, "sdp": {"ip": [], "port": bob.rtp.port}}
                assert (await bob.post("p2p_answer", answer))["status"] == "ok"
                await finished(carrier)
                [row] = await closed_records(server, BOB, 1)
            assert (row["kind"], row["carrier_codec"]) == ("in", codec)
            warned = [r for r in caplog.records if "the carrier chose" in r.getMessage()]
            assert len(warned) == (codec != "AMR")
        finally:
            bob.rtp.close()
            if carrier.returncode is None:
                carrier.kill()
