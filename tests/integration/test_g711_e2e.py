"""G.711-only carriers end to end (CONTRACT §6.4): lwork over real HTTP with its SIP trunk and
built-in relay transcoding, sipp as the carrier, real UDP on both sides. The app plays the
shipped AMR tone (440 Hz, then 880 Hz), the phone plays the same tune in G.711 made by ffmpeg;
each side decodes what it receives and the tone's frequencies must be there (a DFT).

The phone's media is a socket of the test (sipp's SDP names its port), which plays the phone's
tone and records what the relay sends the phone: both directions are checked by decoded
audio, outbound and inbound."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_call_records import closed_records
from test_callback import LOCAL, REMOTE, allow_local, start, two_phones, until_legs
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

from lwork.media.codecs import amr_payload, amrnb, g711
from lwork.media.relay.rtp import RtpPacket
from lwork.media.sdp_min import parse_sdp
from lwork.sim.amr import demo_clip

from conftest import LiveServer
from fakes.rtp_peer import RtpPeer
from fakes.tones import dominant, samples

FFMPEG = shutil.which("ffmpeg")
pytestmark = [
    pytest.mark.skipif(SIPP is None, reason="sipp not installed: apt-get install sip-tester"),
    pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed: apt-get install ffmpeg"),
    pytest.mark.skipif(amrnb.available() is not None, reason="no libopencore-amrnb"),
]
Factory = Callable[..., Any]
TRANSCODING = {"transcoding": True}
LAWS = {"PCMA": (8, "alaw", g711.alaw_decode), "PCMU": (0, "mulaw", g711.mulaw_decode)}
OTHERS = (300.0, 660.0, 1200.0, 2000.0, 3000.0)


async def ffmpeg_tone(tmp_path: Path, law: str) -> bytes:
    """1.5 s of 440 Hz then 1.5 s of 880 Hz, 8 kHz mono, as raw `law` bytes from ffmpeg."""
    assert FFMPEG is not None
    out = tmp_path / f"tone.{LAWS[law][1]}"
    process = await asyncio.create_subprocess_exec(
        FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=1.5",
        "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=8000:duration=1.5",
        "-filter_complex", "[0:a][1:a]concat=n=2:v=0:a=1", "-ac", "1", "-ar", "8000",
        "-f", LAWS[law][1], str(out),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    data = out.read_bytes()
    assert len(data) == 24000
    return data


def g711_packets(audio: bytes, law: str, ssrc: int = 0xCA441E) -> list[bytes]:
    pt = LAWS[law][0]
    return [
        bytes(RtpPacket(pt, i, i * 160, ssrc, audio[160 * i : 160 * (i + 1)]))
        for i in range(len(audio) // 160)
    ]


def app_packets(ssrc: int = 0xA11CE, octet_aligned: bool = False) -> list[bytes]:
    """The shipped AMR tone as an app sends it (bandwidth-efficient unless told otherwise:
    `calls.payload_mode`)."""
    return [
        bytes(RtpPacket(102, seq, seq * 160, ssrc, amr_payload.build([frame], octet_aligned)))
        for seq, frame in enumerate(demo_clip())
    ]


async def play(peer: RtpPeer, packets: list[bytes], to: tuple[str, int]) -> None:
    for packet in packets:
        peer.send_rtp(packet, to)
        await asyncio.sleep(0.02)


def assert_tone(pcm: bytes) -> None:
    """440 Hz in the first half, 880 Hz in the second, each far above anything else."""
    values = samples(pcm)
    half = len(values) // 2
    assert dominant(values[800 : half - 800], (440.0,), OTHERS + (880.0,)) > 50
    assert dominant(values[half + 800 : -800], (880.0,), OTHERS + (440.0,)) > 50


def decode_amr(received: list[bytes], octet_aligned: bool = False) -> bytes:
    """The app's AMR (one frame a packet, in the payload format of `octet_aligned` and of
    exactly its size) decoded."""
    decoder = amrnb.Decoder()
    packets = [RtpPacket.parse(data) for data in received]
    assert {p.payload_type for p in packets} == {102}
    frames = [amr_payload.parse(p.payload, octet_aligned)[1] for p in packets]
    assert all(len(f) == 1 for f in frames)
    assert all(
        amr_payload.payload_size(f, octet_aligned) == len(p.payload)
        for f, p in zip(frames, packets, strict=True)
    )
    return b"".join(decoder.decode(f[0]) for f in frames)


async def transcoded_then_forwarded(
    server: LiveServer, sid: str, app: RtpPeer, to_app_leg: tuple[str, int], phone: RtpPeer
) -> None:
    """The app's AMR reaches the phone as PCMA until the carrier's re-INVITE to AMR, then
    byte for byte: the relay stopped transcoding the call."""
    sent = app_packets()
    await play(app, sent[:10], to_app_leg)
    heard = [RtpPacket.parse(r.data) for r in await phone.wait_rtp(10)]
    assert {p.payload_type for p in heard} == {8}  # transcoded to PCMA

    async def transcoding() -> bool:
        query = await server.services.ng.request({"command": "query", "call-id": sid})
        return "transcoding" in query

    for _ in range(100):  # the re-INVITE comes 3 s after the ACK
        if not await transcoding():
            break
        await asyncio.sleep(0.1)
    assert not await transcoding()
    before = len(phone.rtp_in)
    await play(app, sent[10:30], to_app_leg)
    forwarded = await phone.wait_rtp(before + 20)
    assert [r.data for r in forwarded[before:]] == sent[10:30]  # AMR, byte for byte


@pytest.mark.parametrize(
    ("scenario", "law"), [("uas_pstn_pcma.xml", "PCMA"), ("uas_pstn_media.xml", "PCMU")]
)
async def test_an_app_calls_a_g711_only_carrier_and_each_hears_the_other(
    server_factory: Factory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
    law: str,
) -> None:
    phone_audio = await ffmpeg_tone(tmp_path, law)
    phone_media = await RtpPeer.open()
    port = free_udp_port()
    carrier = await sipp(tmp_path, scenario, "-p", str(port), "-mp", str(free_udp_port()),
                         "-set", "rtpport", str(phone_media.port))  # fmt: skip
    try:
        async with server_factory(**trunk_settings(port), media=TRANSCODING) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            started = await alice.call(PHONE_NUMBER, type_="pstn")
            sid = started["session_id"]
            await statuses_until(alice, sid, "hookoff", [])
            relay_sdp = server.services.calls.calls[sid].sdp_for["phone"]
            to_carrier_leg = (started["ip"], parse_sdp(relay_sdp).port)
            sent_app, sent_phone = app_packets(), g711_packets(phone_audio, law)
            await asyncio.gather(
                play(alice.rtp, sent_app, (started["ip"], started["port"])),
                play(phone_media, sent_phone, to_carrier_leg),
            )
            heard_by_phone = [r.data for r in await phone_media.wait_rtp(len(sent_app))]
            heard_by_app = [r.data for r in await alice.rtp.wait_rtp(len(sent_phone))]

            pt, _, decode = LAWS[law]
            to_phone = [RtpPacket.parse(data) for data in heard_by_phone]
            assert {p.payload_type for p in to_phone} == {pt}
            assert_tone(b"".join(decode(p.payload) for p in to_phone))
            assert_tone(decode_amr(heard_by_app))

            # The app's status shows its transcoded leg's figures like a forwarded one's.
            stats: dict[str, Any] = {}
            for _ in range(50):
                stats = (await alice.status(sid))["stats"]
                if stats.get("pr") == len(sent_app):
                    break
                await asyncio.sleep(0.1)
            assert stats["pr"] == len(sent_app) and stats["pl"] == 0

            assert await alice.hangup(sid) == {"status": "ok"}
            await finished(carrier)
            [row] = await closed_records(server, ALICE, 1)
            assert row["carrier_codec"] == law
            alice.rtp.close()
        assert not [r for r in caplog.records if "does not transcode" in r.getMessage()]
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()


@pytest.mark.parametrize(
    ("payload_mode", "octet_aligned"), [("normal", False), ("octet-aligned", True)]
)
async def test_the_payload_mode_reaches_the_app_legs_sdp_and_the_transcoder(
    server_factory: Factory, tmp_path: Path, payload_mode: str, octet_aligned: bool
) -> None:
    """`calls.payload_mode` is the app's AMR payload format in its leg's SDP: the offer to the
    carrier names it, the transcoder reads the app's packets in it without switching, and
    writes the app's packets in it."""
    phone_audio = await ffmpeg_tone(tmp_path, "PCMA")
    phone_media = await RtpPeer.open()
    port = free_udp_port()
    media_port = str(phone_media.port)
    carrier = await sipp(tmp_path, "uas_pstn_pcma.xml", "-p", str(port), "-mp",
                         str(free_udp_port()), "-set", "rtpport", media_port)  # fmt: skip
    settings = trunk_settings(port, payload_mode=payload_mode)
    try:
        async with server_factory(**settings, media=TRANSCODING) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            started = await alice.call(PHONE_NUMBER, type_="pstn")
            sid = started["session_id"]
            assert started["payload_mode"] == payload_mode
            await statuses_until(alice, sid, "hookoff", [])
            relay_sdp = server.services.calls.calls[sid].sdp_for["phone"]
            assert f"a=fmtp:102 octet-align={int(octet_aligned)}" in relay_sdp
            to_carrier_leg = (started["ip"], parse_sdp(relay_sdp).port)
            sent_app = app_packets(octet_aligned=octet_aligned)
            sent_phone = g711_packets(phone_audio, "PCMA")
            await asyncio.gather(
                play(alice.rtp, sent_app, (started["ip"], started["port"])),
                play(phone_media, sent_phone, to_carrier_leg),
            )
            heard_by_phone = [RtpPacket.parse(r.data) for r in await phone_media.wait_rtp(150)]
            heard_by_app = [r.data for r in await alice.rtp.wait_rtp(150)]
            assert_tone(b"".join(g711.alaw_decode(p.payload) for p in heard_by_phone))
            assert_tone(decode_amr(heard_by_app, octet_aligned))
            query = await server.services.ng.request({"command": "query", "call-id": sid})
            counters = query["transcoding"]["to_carrier"]
            assert counters["format_switches"] == 0 and counters["malformed"] == 0
            assert await alice.hangup(sid) == {"status": "ok"}
            await finished(carrier)
            alice.rtp.close()
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()


@pytest.mark.parametrize("law", ["PCMA", "PCMU"])
async def test_a_g711_only_phone_calls_an_app_and_each_hears_the_other(
    server_factory: Factory, tmp_path: Path, law: str
) -> None:
    """Inbound: sipp's INVITE offers `law` only with its media at a socket of the test, which
    plays the phone's tone and records what the relay sends the phone; the app answers and
    plays its AMR tone. Both sides' audio is decoded and the tones found."""
    phone_audio = await ffmpeg_tone(tmp_path, law)
    phone_media = await RtpPeer.open()
    async with server_factory(**trunk_settings(free_udp_port()), media=TRANSCODING) as server:
        bob = await make_app(server, BOB, "bob-phone")
        await bob.poll()
        assert server.services.sip_address is not None
        target = "{}:{}".format(*server.services.sip_address)
        carrier = await sipp(
            tmp_path, "uac_call_app_g711_socket.xml", "-s", BOB, target,
            "-mp", str(free_udp_port()), "-set", "pt", str(LAWS[law][0]), "-set", "codec", law,
            "-set", "rtpport", str(phone_media.port),
        )  # fmt: skip
        try:
            opdata = (await first_invitation(bob)).get("opdata", {})
            assert await bob.post("p2p_ringing", {"opdata": opdata}) == {"status": "ok"}
            answer = {"opdata": opdata, "sdp": {"ip": [], "port": bob.rtp.port}}
            assert (await bob.post("p2p_answer", answer))["status"] == "ok"
            sid = opdata["session_id"]
            # The answer lwork gave the carrier is G.711: the law it offered.
            agreed = server.services.calls.calls[sid].sdp_for["phone"]
            assert parse_sdp(agreed).payload_types[0] == LAWS[law][0]
            to_carrier_leg = (opdata["ip"], parse_sdp(agreed).port)
            sent_app, sent_phone = app_packets(), g711_packets(phone_audio, law)
            await asyncio.gather(
                play(bob.rtp, sent_app, (opdata["ip"], opdata["port"])),
                play(phone_media, sent_phone, to_carrier_leg),
            )
            heard_by_phone = [RtpPacket.parse(r.data) for r in await phone_media.wait_rtp(150)]
            heard_by_app = [r.data for r in await bob.rtp.wait_rtp(150)]
            stats = await server.services.ng.request({"command": "query", "call-id": sid})
            await finished(carrier)

            pt, _, decode = LAWS[law]
            assert {p.payload_type for p in heard_by_phone} == {pt}
            assert {r.source for r in phone_media.rtp_in} == {to_carrier_leg}
            assert_tone(b"".join(decode(p.payload) for p in heard_by_phone[:150]))
            assert_tone(decode_amr(heard_by_app[:150]))
            report = stats["transcoding"]
            assert (report["app codec"], report["carrier codec"]) == ("AMR", law)
            [row] = await closed_records(server, BOB, 1)
            assert (row["kind"], row["carrier_codec"]) == ("in", law)
        finally:
            bob.rtp.close()
            phone_media.close()
            if carrier.returncode is None:
                carrier.kill()


async def test_a_g711_phone_that_re_invites_to_amr_is_forwarded_again(
    server_factory: Factory, tmp_path: Path
) -> None:
    """Inbound: the phone calls in PCMA and is transcoded; its re-INVITE offers AMR alone, lwork
    answers AMR (sipp checks) although its first answer was PCMA, and the relay forwards the
    call byte for byte from then on."""
    phone_media = await RtpPeer.open()
    async with server_factory(**trunk_settings(free_udp_port()), media=TRANSCODING) as server:
        bob = await make_app(server, BOB, "bob-phone")
        await bob.poll()
        assert server.services.sip_address is not None
        target = "{}:{}".format(*server.services.sip_address)
        carrier = await sipp(
            tmp_path, "uac_call_app_g711_then_amr.xml", "-s", BOB, target,
            "-mp", str(free_udp_port()), "-set", "pt", "8", "-set", "codec", "PCMA",
            "-set", "rtpport", str(phone_media.port),
        )  # fmt: skip
        try:
            opdata = (await first_invitation(bob)).get("opdata", {})
            assert await bob.post("p2p_ringing", {"opdata": opdata}) == {"status": "ok"}
            answer = {"opdata": opdata, "sdp": {"ip": [], "port": bob.rtp.port}}
            assert (await bob.post("p2p_answer", answer))["status"] == "ok"
            sid = opdata["session_id"]
            to_app_leg = (opdata["ip"], opdata["port"])
            await transcoded_then_forwarded(server, sid, bob.rtp, to_app_leg, phone_media)
            assert server.services.calls.calls[sid].carrier_codec["phone"] == "AMR"
            await finished(carrier)  # our answer to the re-INVITE was AMR
        finally:
            bob.rtp.close()
            phone_media.close()
            if carrier.returncode is None:
                carrier.kill()


async def test_a_callback_between_two_g711_phones_is_forwarded_not_transcoded(
    server_factory: Factory, tmp_path: Path
) -> None:
    async with two_phones(tmp_path, "uas_callback_both.xml") as (port, sipp_, local, remote):
        async with server_factory(**trunk_settings(port), media=TRANSCODING) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            await allow_local(server, ALICE)
            alice.rtp.close()
            started = await start(server, {"uuid": ALICE, "local": LOCAL, "remote": REMOTE})
            sid = started["session_id"]
            assert await until_legs(server, sid, ("hookoff", "hookoff")) == ("hookoff", "hookoff")
            relay = server.services.ng
            local_relay = await relay.relay_address(sid, "local")
            sent = g711_packets(bytes(range(256)) * 20, "PCMA", ssrc=11)[:20]
            for packet in sent:
                local.send_rtp(packet, local_relay)
            heard = await remote.wait_rtp(20)
            assert [r.data for r in heard[:20]] == sent  # byte for byte: forwarded
            query = await relay.request({"command": "query", "call-id": sid})
            assert "transcoding" not in query
            r = await server.client.request("DELETE", server.url + "/lwork/mobile/callback",
                                            json={"session_id": sid})  # fmt: skip
            assert r.json() == {"status": "ok"}
            await finished(sipp_)


async def test_a_carriers_re_invite_to_amr_ends_transcoding_and_the_call_is_forwarded(
    server_factory: Factory, tmp_path: Path
) -> None:
    """The carrier answers PCMA, then re-INVITEs with AMR at the same address: lwork answers
    AMR (sipp checks), the relay stops transcoding, and each side's AMR reaches the other
    byte for byte."""
    phone_media = await RtpPeer.open()
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_pstn_pcma_then_amr.xml", "-p", str(port),
                         "-set", "rtpport", str(phone_media.port))  # fmt: skip
    try:
        async with server_factory(**trunk_settings(port), media=TRANSCODING) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            started = await alice.call(PHONE_NUMBER, type_="pstn")
            sid = started["session_id"]
            seen: list[str] = []
            await statuses_until(alice, sid, "hookoff", seen)
            assert seen[-1] == "hookoff", seen
            relay_sdp = server.services.calls.calls[sid].sdp_for["phone"]
            to_carrier_leg = (started["ip"], parse_sdp(relay_sdp).port)
            to_app_leg = (started["ip"], started["port"])
            await transcoded_then_forwarded(server, sid, alice.rtp, to_app_leg, phone_media)
            back = app_packets(ssrc=0xCA441E)[:20]
            await play(phone_media, back, to_carrier_leg)
            assert [r.data for r in (await alice.rtp.wait_rtp(20))[-20:]] == back
            assert server.services.calls.calls[sid].carrier_codec["phone"] == "AMR"

            assert await alice.hangup(sid) == {"status": "ok"}
            await finished(carrier)  # our answer to the re-INVITE was AMR
            [row] = await closed_records(server, ALICE, 1)
            assert row["carrier_codec"] == "PCMA"  # the record keeps the codec of the answer
            alice.rtp.close()
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()
