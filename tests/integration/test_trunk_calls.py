"""Calls to and from real phones: lwork with its SIP trunk against sipp as the carrier."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_p2p_calls import ALICE, BOB, App, make_app, rtpengine
from test_sip_trunk import free_udp_port

from lwork.media.relay.rtp import RtpPacket
from lwork.media.sdp_min import parse_sdp

from conftest import LiveServer
from fakes.rtp_peer import RtpPeer, eventually

SIPP = shutil.which("sipp")
pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp not installed: apt-get install sip-tester"
)
SCENARIOS = Path(__file__).parent.parent / "data" / "sipp"
PHONE_NUMBER = "02079460000"


async def sipp(
    tmp_path: Path, scenario: str, *args: str, calls: int = 1
) -> asyncio.subprocess.Process:
    """sipp playing ``scenario`` ``calls`` times, then exiting (``finished``)."""
    assert SIPP is not None
    return await asyncio.create_subprocess_exec(
        SIPP, "-sf", str(SCENARIOS / scenario), *args, "-m", str(calls), "-nostdin",
        "-timeout", "30s",
        "-timeout_error", "-i", "127.0.0.1", "-mi", "127.0.0.1",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def finished(process: asyncio.subprocess.Process) -> str:
    output, _ = await asyncio.wait_for(process.communicate(), 40)
    text = output.decode(errors="replace")[-3000:]
    assert process.returncode == 0, text
    return text


def trunk_settings(proxy_port: int, **calls: Any) -> dict[str, Any]:
    return {
        "push": {"hold_s": 0.5},
        "calls": {"p2p_fallback_s": 30, **calls},
        "sip": {"enabled": True, "proxy_port": proxy_port, "listen_port": 0,
                "options_interval_s": 0, "trusted_sources": ["127.0.0.1"],
                "number_rules": [["00", "+"], ["0", "+44"]], "default_country_code": "44"},
    }  # fmt: skip


async def statuses_until(app: App, sid: str, final: str, seen: list[str]) -> None:
    for _ in range(300):
        status = (await app.status(sid))["peer_status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in (final, "release"):
            return
        await asyncio.sleep(0.05)


async def test_call_to_a_phone_with_media_and_dtmf(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    phone_media = await RtpPeer.open()
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_pstn_media.xml", "-p", str(port), "-set", "rtpport",
                         str(phone_media.port))  # fmt: skip
    try:
        async with server_factory(**trunk_settings(port)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            started = await alice.call(PHONE_NUMBER, type_="pstn")
            sid = started["session_id"]
            seen: list[str] = []
            await statuses_until(alice, sid, "hookoff", seen)
            assert seen == ["idle", "ring", "hookoff"], seen

            # the app's voice reaches the phone through the relay
            alice.send((started["ip"], started["port"]), 20, ssrc=77)
            assert len(await phone_media.wait_rtp(20)) >= 20

            # DTMF becomes RFC 4733 events toward the phone
            before = len(phone_media.rtp_in)
            assert await alice.post("voip/dtmf", {"session_id": sid, "num": "1#"}) == {
                "status": "ok"
            }

            def events() -> list[tuple[int, bool]]:
                found = []
                for received in phone_media.rtp_in[before:]:
                    packet = RtpPacket.parse(received.data)
                    if packet.payload_type == 101:
                        found.append((packet.payload[0], bool(packet.payload[1] & 0x80)))
                return found

            assert await eventually(lambda: {(1, True), (11, True)} <= set(events()), 10)
            assert [e for e, _ in events()] == sorted([e for e, _ in events()])  # 1 before #

            assert await alice.hangup(sid) == {"status": "ok"}
            await finished(carrier)  # sipp saw our BYE and answered it
            alice.rtp.close()
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()


@contextlib.asynccontextmanager
async def fallen_back_call(
    server_factory: Any, tmp_path: Path
) -> AsyncIterator[tuple[LiveServer, App, App, str, dict[str, Any], list[str]]]:
    """Alice calls Bob's app, which stays silent: the call falls back to Bob's phone (sipp),
    which answers. Yields the server, both apps, the caller's sid, Bob's invitation and the
    statuses Alice read until the phone answered; hangs up when done."""
    phone_media = await RtpPeer.open()
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_pstn_media.xml", "-p", str(port), "-set", "rtpport",
                         str(phone_media.port))  # fmt: skip
    try:
        async with server_factory(**trunk_settings(port, p2p_fallback_s=0.5)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            bob = await make_app(server, BOB, "bob-phone")
            try:
                await bob.poll()  # bob's app is reachable, but will not ring
                sid = (await alice.call(BOB))["session_id"]
                opdata = (await bob.poll())["data"][0]["opdata"]
                seen: list[str] = []
                await statuses_until(alice, sid, "hookoff", seen)
                yield server, alice, bob, sid, opdata, seen
                await alice.hangup(sid)
                await finished(carrier)  # sipp saw our BYE and answered it
            finally:
                alice.rtp.close()
                bob.rtp.close()
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()


async def test_p2p_call_falls_back_to_the_real_phone(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with fallen_back_call(server_factory, tmp_path) as (_, _, bob, _, opdata, seen):
        assert seen == ["p2p_idle", "idle", "ring", "hookoff"], seen
        late = await bob.post("p2p_answer", {"opdata": opdata, "sdp": {"port": 4000}})
        assert late == {"status": "failed", "reason": "already_call_real_phone"}
        assert (await bob.post("p2p_ringing", {"opdata": opdata}))["reason"] == (
            "already_call_real_phone"
        )


async def first_invitation(app: App) -> dict[str, Any]:
    """The app's first event other than ``shake_hand`` ({} if none came): sipp, calling it,
    takes a moment to start."""
    for _ in range(40):
        events = (await app.poll())["data"]
        if events[0]["event"] != "shake_hand":
            return dict(events[0])
    return {}


async def test_a_phone_calls_an_app(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**trunk_settings(free_udp_port())) as server:
        bob = await make_app(server, BOB, "bob-phone")
        await bob.poll()
        assert server.services.sip_address is not None
        target = "{}:{}".format(*server.services.sip_address)
        carrier = await sipp(tmp_path, "uac_call_app.xml", "-s", BOB, target)
        try:
            invite = await first_invitation(bob)
            assert invite["event"] == "p2p_inform_called"
            opdata = invite["opdata"]
            assert opdata["event"] == "sip_call_in" and opdata["caller"]
            assert list(opdata) == ["event", "caller", "callee", "session_id", "ip", "port",
                                    "codec_name", "payload_mode", "rssrc"]  # fmt: skip
            sid = opdata["session_id"]
            assert (await bob.status(sid))["peer_status"] == "p2p_idle"
            assert await bob.post("p2p_ringing", {"opdata": opdata}) == {"status": "ok"}
            answer = await bob.post(
                "p2p_answer", {"opdata": opdata, "sdp": {"ip": [], "port": bob.rtp.port}}
            )
            assert answer == {**opdata, "status": "ok"}
            # sipp ACKs, waits, then hangs up: the app sees the call end
            output = await finished(carrier)
            assert "answer carries" in output or output
            assert await eventually(lambda: server.services.calls.active == 0, 10)
            assert (await bob.status(sid))["peer_status"] == "release"
        finally:
            bob.rtp.close()
            if carrier.returncode is None:
                carrier.kill()


async def test_calls_to_unknown_or_unreachable_numbers(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**trunk_settings(free_udp_port())) as server:
        assert server.services.sip_address is not None
        target = "{}:{}".format(*server.services.sip_address)
        await finished(await sipp(tmp_path, "uac_not_found.xml", "-s", "13123456789", target))
        bob = await make_app(server, BOB, "bob-phone", polled=False)  # never polled: unreachable
        try:
            await finished(await sipp(tmp_path, "uac_unavailable.xml", "-s", BOB, target))
        finally:
            bob.rtp.close()


async def test_an_app_that_never_rings_refuses_with_480(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = trunk_settings(free_udp_port())
    settings["sip"]["inbound_ring_s"] = 1.0
    async with server_factory(**settings) as server:
        bob = await make_app(server, BOB, "bob-phone")
        await bob.poll()  # reachable, but the app will not ring
        assert server.services.sip_address is not None
        target = "{}:{}".format(*server.services.sip_address)
        try:
            await finished(await sipp(tmp_path, "uac_unavailable.xml", "-s", BOB, target))
            # the call's release ends with its record: by then the invitation has left the
            # app's mailbox (the call stops counting as active before that)
            records = server.services.records
            assert records is not None

            async def ended() -> list[dict[str, Any]]:
                for _ in range(250):
                    if rows := await records.rows(BOB, 0, 1e12):
                        return rows
                    await asyncio.sleep(0.02)
                return []

            assert [row["end_reason"] for row in await ended()] == ["ring_timeout"]
            assert (await bob.poll())["data"] == [{"event": "shake_hand"}]
        finally:
            bob.rtp.close()


async def test_dtmf_as_sip_info_when_the_trunk_has_no_telephone_event(
    server_factory,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    phone_media = await RtpPeer.open()
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_pstn_info.xml", "-p", str(port), "-set", "rtpport",
                         str(phone_media.port))  # fmt: skip
    try:
        async with server_factory(**trunk_settings(port)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            sid = (await alice.call(PHONE_NUMBER, type_="pstn"))["session_id"]
            seen: list[str] = []
            await statuses_until(alice, sid, "hookoff", seen)
            assert seen[-1] == "hookoff"
            assert await alice.post("voip/dtmf", {"session_id": sid, "num": "1#"}) == {
                "status": "ok"
            }
            await asyncio.sleep(0.5)
            await alice.hangup(sid)
            await finished(carrier)  # sipp checked both INFO bodies, then got our BYE
            alice.rtp.close()
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()


async def test_a_strangers_rtp_gets_none_of_the_apps_audio_for_the_phone(
    server_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The carrier leg takes media only from its SDP's host (sipp's c=127.0.0.1)."""
    phone_media = await RtpPeer.open()
    stranger = await RtpPeer.open("127.0.0.2")
    port = free_udp_port()
    carrier = await sipp(tmp_path, "uas_pstn_media.xml", "-p", str(port), "-set", "rtpport",
                         str(phone_media.port))  # fmt: skip
    try:
        async with server_factory(**trunk_settings(port)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            started = await alice.call(PHONE_NUMBER, type_="pstn")
            sid = started["session_id"]
            await statuses_until(alice, sid, "hookoff", [])
            # where the carrier sends the phone's voice: the relay address in our INVITE's SDP
            relay_sdp = server.services.calls.calls[sid].sdp_for["phone"]
            to_carrier_leg = (started["ip"], parse_sdp(relay_sdp).port)
            for n in range(10):
                stranger.send_rtp(RtpPacket(102, n, 0, 0x5, bytes(32)), to_carrier_leg)
            await asyncio.sleep(0.2)
            alice.send((started["ip"], started["port"]), 20, ssrc=77)
            assert len(await phone_media.wait_rtp(20)) >= 20
            assert stranger.rtp_in == []
            assert await alice.hangup(sid) == {"status": "ok"}
            await finished(carrier)
            alice.rtp.close()
    finally:
        phone_media.close()
        stranger.close()
        if carrier.returncode is None:
            carrier.kill()


async def test_the_phones_media_follows_the_carriers_re_invite_to_a_new_host(
    server_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    phone_media = await RtpPeer.open()
    moved_media = await RtpPeer.open("127.0.0.2")
    port = free_udp_port()
    ports = ["-set", "rtpport", str(phone_media.port), "-set", "rtpport2", str(moved_media.port)]
    carrier = await sipp(tmp_path, "uas_pstn_media_moves.xml", "-p", str(port), *ports)
    try:
        async with server_factory(**trunk_settings(port)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            started = await alice.call(PHONE_NUMBER, type_="pstn")
            sid = started["session_id"]
            await statuses_until(alice, sid, "hookoff", [])
            active = server.services.calls.calls[sid]
            to_carrier_leg = (started["ip"], parse_sdp(active.sdp_for["phone"]).port)
            phone_media.send_rtp(RtpPacket(0, 1, 0, 0x9, bytes(32)), to_carrier_leg)
            assert len(await alice.rtp.wait_rtp(1)) == 1
            moved_media.send_rtp(RtpPacket(0, 2, 160, 0x9, bytes(32)), to_carrier_leg)
            await asyncio.sleep(0.2)
            assert len(alice.rtp.rtp_in) == 1  # the new host, before the re-INVITE: refused
            leg = active.sip.get("phone")
            assert leg is not None
            assert await eventually(lambda: "127.0.0.2" in (leg.remote_sdp or ""), 10)

            def moved_heard() -> bool:
                moved_media.send_rtp(RtpPacket(0, 3, 320, 0x9, bytes(32)), to_carrier_leg)
                return len(alice.rtp.rtp_in) > 1

            assert await eventually(moved_heard, 5)
            alice.send((started["ip"], started["port"]), 5, ssrc=77)
            assert len(await moved_media.wait_rtp(5)) >= 5
            assert await alice.hangup(sid) == {"status": "ok"}
            await finished(carrier)
            alice.rtp.close()
    finally:
        phone_media.close()
        moved_media.close()
        if carrier.returncode is None:
            carrier.kill()


@pytest.mark.parametrize("relay", ["builtin", "rtpengine"])
async def test_sip_answer_without_sdp_learns_the_apps_media_from_its_rtp(  # type: ignore[no-untyped-def]
    server_factory, tmp_path: Path, relay: str
) -> None:
    # The spec's `sip_answer` takes `session_id, clidata` only (CONTRACT §6.2 item 4).
    async with contextlib.AsyncExitStack() as stack:
        settings = trunk_settings(free_udp_port())
        if relay == "rtpengine":
            settings["media"] = {"ng_url": await stack.enter_async_context(rtpengine())}
        server = await stack.enter_async_context(server_factory(**settings))
        bob = await make_app(server, BOB, "bob-phone")
        await bob.poll()
        assert server.services.sip_address is not None
        target = "{}:{}".format(*server.services.sip_address)
        carrier = await sipp(tmp_path, "uac_call_app_talk.xml", "-s", BOB, target)
        phone = await RtpPeer.open()  # the carrier's media
        try:
            opdata = (await first_invitation(bob)).get("opdata", {})
            sid = opdata["session_id"]
            assert await bob.post("sip_ringing", {"session_id": sid}) == {"status": "ok"}
            answer = await bob.post("sip_answer", {"session_id": sid, "clidata": {"x": 1}})
            assert answer == {**opdata, "status": "ok"}
            # the app speaks first; the phone's audio then reaches the app where it spoke from
            bob.send((opdata["ip"], opdata["port"]), 5, ssrc=0xB0B)
            ng = server.services.ng
            assert ng is not None
            legs = (await ng.query(sid)).legs
            sip_rtp = legs["sip"].rtp
            assert sip_rtp is not None and sip_rtp.local_port is not None
            for n in range(10):
                packet = RtpPacket(96, n, n * 160, 0xCA11, payload=bytes(32))
                phone.send_rtp(packet, ("127.0.0.1", sip_rtp.local_port))
            assert len(await bob.rtp.wait_rtp(10)) == 10
            assert {RtpPacket.parse(r.data).ssrc for r in bob.rtp.rtp_in} == {0xCA11}
            # p2p_poll shows the phone's leg: what the relay received from the carrier
            polled: dict[str, Any] = {}
            for _ in range(50):
                polled = await bob.post("p2p_poll", {"opdata": opdata})
                if polled["stats"].get("pr") == 10:
                    break
                await asyncio.sleep(0.1)
            assert polled["peer_status"] == "p2p_hookoff" and polled["stats"]["pr"] == 10
            await finished(carrier)
            assert await eventually(lambda: server.services.calls.active == 0, 10)
        finally:
            bob.rtp.close()
            phone.close()
            if carrier.returncode is None:
                carrier.kill()


async def test_ended_phone_calls_leave_nothing_behind(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every ended phone call is let go at once. A soak saw the server's memory grow with each
    SIP call: the INVITE's client transaction kept its leg for Timer M (32 s after the 2xx),
    and the leg kept the whole call through its listener."""
    import gc

    from lwork.calls.live import LiveCall
    from lwork.sip.trunk.legs import SipLeg

    phone_media = await RtpPeer.open()
    port = free_udp_port()
    calls = 4
    carrier = await sipp(tmp_path, "uas_pstn_media.xml", "-p", str(port), "-set", "rtpport",
                         str(phone_media.port), calls=calls)  # fmt: skip
    try:
        async with server_factory(**trunk_settings(port, ended_memory_s=0)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            for _ in range(calls):
                sid = (await alice.call(PHONE_NUMBER, type_="pstn"))["session_id"]
                await statuses_until(alice, sid, "hookoff", [])
                assert await alice.hangup(sid) == {"status": "ok"}
            await finished(carrier)  # sipp saw every BYE and answered it
            alice.rtp.close()

            def alive() -> tuple[int, list[SipLeg]]:
                gc.collect()
                objects = gc.get_objects()
                legs = [o for o in objects if isinstance(o, SipLeg)]
                return sum(isinstance(o, LiveCall) for o in objects), legs

            assert await eventually(lambda: alive()[0] == 0, 5), alive()[0]
            # what the transactions still hold for Timer M holds nothing of the call
            assert all(leg.listener is None for leg in alive()[1])
    finally:
        phone_media.close()
        if carrier.returncode is None:
            carrier.kill()
