"""Transcoding by an external relay (`media.ng_url`, CONTRACT §6.4): lwork asks it with the ng
protocol's codec options where its build can, and says at start-up when it cannot.

Real relays on loopback: Debian's rtpengine (which decodes AMR but cannot encode it: the probe
must find that out) and an `lwork relay` with its transcoding workers (which can: the probe,
the codec options and a whole call to a G.711-only sipp carrier go through it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from test_g711_e2e import (
    LAWS,
    TRANSCODING,
    app_packets,
    assert_tone,
    decode_amr,
    ffmpeg_tone,
    g711_packets,
    play,
)
from test_p2p_calls import ALICE, make_app
from test_sip_trunk import free_udp_port
from test_trunk_calls import PHONE_NUMBER, SIPP, finished, sipp, statuses_until, trunk_settings

from lwork.media.codecs import amrnb
from lwork.media.control import media_control
from lwork.media.ng.client import NgClient
from lwork.media.ng_transcoding import offer_codecs, probe
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.rtp import RtpPacket
from lwork.media.relay.server import RelayServer
from lwork.media.sdp_min import build_sdp, parse_sdp
from lwork.settings import MediaSettings

from fakes.rtp_peer import RtpPeer

Factory = Callable[..., Any]
needs_amr = pytest.mark.skipif(amrnb.available() is not None, reason="no libopencore-amrnb")


@contextlib.asynccontextmanager
async def rtpengine(low: int) -> AsyncIterator[str]:
    """Debian's rtpengine in userspace on loopback, its media ports from `low` (a range of this
    module's own) and without Debian's /etc/rtpengine/rtpengine.conf, whose fixed CLI and HTTP
    ports make a second daemon on the machine exit; its `media.ng_url`."""
    binary = shutil.which("rtpengine")
    if binary is None:
        pytest.skip("rtpengine-daemon not installed: apt-get install rtpengine-daemon")
    port = free_udp_port()
    process = await asyncio.create_subprocess_exec(
        binary, "--config-file=none", "--foreground", "--log-stderr", "--table=-1",
        "--interface=127.0.0.1", f"--listen-ng=127.0.0.1:{port}",
        f"--port-min={low}", f"--port-max={low + 99}",
        "--delete-delay=0", "--log-level=3",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with NgClient("127.0.0.1", port, timeout_s=0.2, retries=75) as ng:
            await ng.ping()  # retries until the daemon listens
        yield f"udp://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        await process.wait()


@contextlib.asynccontextmanager
async def lwork_relay(transcoding: bool = True) -> AsyncIterator[str]:
    """An `lwork relay` (the built-in relay on its own) on loopback; its `media.ng_url`."""
    config = RelayConfig(
        ng_port=0, port_min=26600, port_max=26799, transcoding=transcoding, rtcp_interval_s=1.0
    )
    async with RelayServer(config) as relay:
        host, port = relay.ng_address
        yield f"udp://{host}:{port}"


def _address(ng_url: str) -> tuple[str, int]:
    host, port = ng_url.removeprefix("udp://").rsplit(":", 1)
    return host, int(port)


async def test_the_probe_finds_that_debians_rtpengine_cannot_encode_amr() -> None:
    async with rtpengine(27000) as ng_url, NgClient(*_address(ng_url), timeout_s=1.0) as ng:
        why = await probe(ng)
        assert why is not None and "AMR" in why and "PCMA" in why
        # It adds what it can code both ways: PCMA and PCMU to an AMR offer.
        reply = await ng.request({
            "command": "offer", "call-id": "p", "from-tag": "a",
            "sdp": build_sdp("127.0.0.1", 4000), "codec": offer_codecs(build_sdp("1.2.3.4", 9)),
        })  # fmt: skip
        assert {"PCMA/8000", "PCMU/8000"} <= set(parse_sdp(reply["sdp"]).rtpmap.values())


@needs_amr
async def test_the_probe_finds_that_an_lwork_relay_transcodes_unless_turned_off() -> None:
    async with lwork_relay() as ng_url, NgClient(*_address(ng_url), timeout_s=1.0) as ng:
        assert await probe(ng) is None
    async with lwork_relay(transcoding=False) as ng_url:
        async with NgClient(*_address(ng_url), timeout_s=1.0) as ng:
            assert await probe(ng) is not None


async def test_start_up_with_debians_rtpengine_says_once_that_it_does_not_transcode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with rtpengine(27100) as ng_url:
        with caplog.at_level(logging.INFO, logger="lwork.media"):
            async with media_control(MediaSettings(ng_url=ng_url)) as relay:
                assert relay.transcoding is False
                assert relay.ng.offer_codecs is None  # its offers ask for nothing
                # A call still goes through it, forwarded as it is.
                result = await relay.ng.offer("c", "caller", build_sdp("127.0.0.1", 4000))
                assert "PCMA" not in result.sdp
    notices = [r for r in caplog.records if "AMR <-> G.711" in r.getMessage()]
    assert len(notices) == 1 and notices[0].levelno == logging.WARNING
    assert notices[0].getMessage().startswith(f"media: the relay at {ng_url} does not transcode")
    assert "AMR" in notices[0].getMessage().split("(", 1)[1]


@needs_amr
@pytest.mark.skipif(SIPP is None, reason="sipp not installed: apt-get install sip-tester")
async def test_an_app_calls_a_g711_carrier_through_an_external_lwork_relay(
    server_factory: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """API node and relay apart: the probe passes, the app's offer asks the relay for PCMA and
    PCMU (it lists them in the SDP toward the carrier), the carrier answers PCMA, and each side
    hears the other's tone."""
    phone_audio = await ffmpeg_tone(tmp_path, "PCMA")
    phone_media = await RtpPeer.open()
    port = free_udp_port()
    media_port = str(phone_media.port)
    carrier = await sipp(tmp_path, "uas_pstn_pcma.xml", "-p", str(port), "-mp",
                         str(free_udp_port()), "-set", "rtpport", media_port)  # fmt: skip
    try:
        async with lwork_relay() as ng_url:
            media = {**TRANSCODING, "ng_url": ng_url}
            with caplog.at_level(logging.INFO, logger="lwork.media"):
                async with server_factory(**trunk_settings(port), media=media) as server:
                    alice = await make_app(server, ALICE, "alice-phone")
                    started = await alice.call(PHONE_NUMBER, type_="pstn")
                    sid = started["session_id"]
                    await statuses_until(alice, sid, "hookoff", [])
                    relay_sdp = server.services.calls.calls[sid].sdp_for["phone"]
                    # The relay's own SDP: G.711 added at lwork's request.
                    assert {"PCMA/8000", "PCMU/8000"} <= set(parse_sdp(relay_sdp).rtpmap.values())
                    to_carrier_leg = (started["ip"], parse_sdp(relay_sdp).port)
                    sent_app, sent_phone = app_packets(), g711_packets(phone_audio, "PCMA")
                    await asyncio.gather(
                        play(alice.rtp, sent_app, (started["ip"], started["port"])),
                        play(phone_media, sent_phone, to_carrier_leg),
                    )
                    to_phone = [RtpPacket.parse(r.data) for r in await phone_media.wait_rtp(150)]
                    heard_by_app = [r.data for r in await alice.rtp.wait_rtp(150)]
                    assert {p.payload_type for p in to_phone} == {8}
                    assert_tone(b"".join(LAWS["PCMA"][2](p.payload) for p in to_phone))
                    assert_tone(decode_amr(heard_by_app))
                    assert await alice.hangup(sid) == {"status": "ok"}
                    await finished(carrier)
                    alice.rtp.close()
        messages = [r.getMessage() for r in caplog.records]
        assert any(f"the relay at {ng_url} transcodes AMR <-> G.711" in m for m in messages)
        assert not any("does not transcode" in m for m in messages)
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()
