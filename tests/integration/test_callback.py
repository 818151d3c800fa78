"""Callback calls (CONTRACT §6.3): lwork rings the user's phone, then the destination, through
its SIP trunk against sipp as the carrier, and bridges the two in the relay."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_p2p_calls import ALICE, BOB, make_app
from test_trunk_calls import SCENARIOS, SIPP, finished, free_udp_port, trunk_settings

from lwork.accounts.provisioning import ProvisioningService
from lwork.fraud.limits import Override
from lwork.http.envelope import unwrap_response
from lwork.media.relay.rtp import RtpPacket

from conftest import LiveServer
from fakes.rtp_peer import RtpPeer

pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp not installed: apt-get install sip-tester"
)
LOCAL = "02079460001"  # +442079460001 at the carrier (uas_callback_both.xml tells it apart)
REMOTE = "02079460002"
PATH = "/lwork/mobile/callback"
Factory = Callable[..., Any]


async def carrier(
    tmp_path: Path, scenario: str, port: int, calls: int, *args: str
) -> asyncio.subprocess.Process:
    """sipp as the carrier's proxy, serving ``calls`` INVITEs with one scenario."""
    assert SIPP is not None
    return await asyncio.create_subprocess_exec(
        SIPP, "-sf", str(SCENARIOS / scenario), "-p", str(port), *args, "-m", str(calls),
        "-nostdin", "-timeout", "30s", "-timeout_error", "-i", "127.0.0.1", "-mi", "127.0.0.1",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


@asynccontextmanager
async def two_phones(
    tmp_path: Path, scenario: str
) -> AsyncIterator[tuple[int, asyncio.subprocess.Process, RtpPeer, RtpPeer]]:
    """sipp as the carrier for a callback's two calls, each phone's media on its own RTP peer."""
    local_media, remote_media = await RtpPeer.open(), await RtpPeer.open()
    port = free_udp_port()
    sipp = await carrier(tmp_path, scenario, port, 2,
                         "-set", "localport", str(local_media.port),
                         "-set", "remoteport", str(remote_media.port))  # fmt: skip
    try:
        yield port, sipp, local_media, remote_media
    finally:
        local_media.close()
        remote_media.close()
        if sipp.returncode is None:
            sipp.kill()


@contextmanager
def silent_proxy() -> Iterator[int]:
    """A carrier that never answers: INVITEs to it stay unanswered (a callback keeps running)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def start(server: LiveServer, body: dict[str, Any]) -> Any:
    r = await server.post(PATH, body)
    return r.json()


async def legs(server: LiveServer, sid: str) -> tuple[str, str]:
    r = await server.get(PATH, params={"session_id": sid})
    body = r.json()
    assert body["status"] == "ok", body
    return body["local"], body["remote"]


async def until_legs(server: LiveServer, sid: str, want: tuple[str, str]) -> tuple[str, str]:
    seen = await legs(server, sid)
    for _ in range(200):
        if seen == want or seen == ("release", "release"):
            break
        await asyncio.sleep(0.05)
        seen = await legs(server, sid)
    return seen


async def allow_local(server: LiveServer, *uuids: str) -> None:
    """The operator lets these users ring LOCAL first: it is not their own number (§6.3)."""
    for uuid in uuids:
        await server.services.fraud.store.set_override(uuid, Override(callback_local=(LOCAL,)), 0)


def voice(peer: RtpPeer, relay: tuple[str, int], ssrc: int) -> None:
    for n in range(20):
        peer.send_rtp(RtpPacket(8, n, n * 160, ssrc, payload=bytes(160)), relay)


async def test_callback_bridges_both_phones(server_factory: Factory, tmp_path: Path) -> None:
    async with two_phones(tmp_path, "uas_callback_both.xml") as (
        port,
        sipp,
        local_media,
        remote_media,
    ):
        async with server_factory(**trunk_settings(port)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            await allow_local(server, ALICE)
            alice.rtp.close()
            started = await start(server, {"uuid": ALICE, "local": LOCAL, "remote": REMOTE})
            assert list(started) == ["status", "session_id"] and started["status"] == "ok"
            sid = started["session_id"]
            assert await until_legs(server, sid, ("hookoff", "hookoff")) == ("hookoff", "hookoff")

            # where each phone sends: the ports the relay gave the two tags of the callback
            relay = server.services.ng
            local_relay = await relay.relay_address(sid, "local")
            remote_relay = await relay.relay_address(sid, "remote")
            assert local_relay != remote_relay

            # local speaks first: the relay knows remote's address from its 200 OK alone
            voice(local_media, local_relay, ssrc=11)
            heard = await remote_media.wait_rtp(20)
            assert len(heard) >= 20 and heard[0].source[1] == remote_relay[1]
            assert RtpPacket.parse(heard[0].data).ssrc == 11
            voice(remote_media, remote_relay, ssrc=22)
            heard = await local_media.wait_rtp(20)
            assert len(heard) >= 20 and heard[0].source[1] == local_relay[1]
            assert RtpPacket.parse(heard[0].data).ssrc == 22

            # hang-up by the session id in the body: sipp sees (and answers) a BYE on each leg
            r = await server.client.request("DELETE", server.url + PATH, json={"session_id": sid})
            assert r.json() == {"status": "ok"}
            await finished(sipp)
            assert await legs(server, sid) == ("release", "release")
            r = await server.client.delete(server.url + PATH, params={"session_id": sid})
            assert r.json() == {"status": "ok"}  # idempotent

            # both legs were billed: one started minute each at 2.5 coins, gift coins first
            cdrs = await server.services.records.rows(ALICE, 0, 1e12)  # type: ignore[union-attr]
            assert sorted((c["id"], c["kind"], c["minutes"], c["cost"]) for c in cdrs) == [
                (sid + "/local", "callback_local", 1, 250),
                (sid + "/remote", "callback_remote", 1, 250),
            ]  # fmt: skip
            assert all(c["sip_status"] == 200 and c["caller"] == ALICE for c in cdrs)
            r = await server.post("/lwork/mobile/get_coin", {"uuid": ALICE})
            assert r.json() == {"status": "ok", "coins": 0, "gift_coins": 295,
                                "month_consumed": 5}  # fmt: skip


async def test_busy_local_phone_releases_the_callback(
    server_factory: Factory, tmp_path: Path
) -> None:
    port = free_udp_port()
    sipp = await carrier(tmp_path, "uas_callback_local_busy.xml", port, 1)
    try:
        async with server_factory(**trunk_settings(port)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            await allow_local(server, ALICE)
            alice.rtp.close()
            started = await start(server, {"uuid": ALICE, "local": LOCAL, "remote": REMOTE})
            sid = started["session_id"]
            await finished(sipp)  # 486 sent, our ACK received
            assert await until_legs(server, sid, ("release", "release")) == ("release", "release")
            # the user may start another one at once
            again = await start(server, {"uuid": ALICE, "local": LOCAL, "remote": REMOTE})
            assert again["status"] == "ok" and again["session_id"] != sid
            await server.client.delete(
                server.url + PATH, params={"session_id": again["session_id"]}
            )
    finally:
        if sipp.returncode is None:
            sipp.kill()


async def test_one_callback_per_user_and_bad_input(server_factory: Factory) -> None:
    with silent_proxy() as port:
        async with server_factory(**trunk_settings(port)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            await allow_local(server, ALICE)
            alice.rtp.close()
            body = {"uuid": ALICE, "local": LOCAL, "remote": REMOTE}
            sid = (await start(server, body))["session_id"]
            assert await legs(server, sid) == ("idle", "idle")  # local's INVITE is unanswered
            assert await start(server, body) == {
                "status": "failed", "reason": "session_already_exist"
            }  # fmt: skip

            # another user is not held back by alice's callback; a stranger is not logged in
            bob = await make_app(server, BOB, "bob-phone")
            await allow_local(server, BOB)
            bob.rtp.close()
            other = await start(server, {**body, "uuid": BOB})
            assert other["status"] == "ok"
            stranger = await start(server, {**body, "uuid": "13700000003"})
            assert stranger == {"status": "failed", "reason": "no_logined"}

            for bad, reason in (({"local": "12"}, "phone_too_short"),
                                ({"remote": "abcd"}, "invalid_phone")):  # fmt: skip
                assert await start(server, {**body, **bad}) == {
                    "status": "failed",
                    "reason": reason,
                }
            r = await server.post(PATH, {"uuid": ALICE, "local": LOCAL})
            assert r.status_code == 400 and r.json()["reason"] == "invalid_params"
            r = await server.post(PATH, {**body, "remote": {"number": "1"}})
            assert r.json()["reason"] == "invalid_params"
            r = await server.get(PATH, params={"session_id": "not a session"})
            assert r.json() == {"status": "failed", "reason": "invalid_sid"}
            r = await server.get(PATH)
            assert r.json()["reason"] == "invalid_params"
            unknown = sid.split("@@")[0] + "@@" + "0" * 32
            assert await legs(server, unknown) == ("release", "release")

            # hang-up by query string; the /mobile1/ path is served too
            r = await server.client.delete(server.url + PATH, params={"session_id": sid})
            assert r.json() == {"status": "ok"}
            assert await legs(server, sid) == ("release", "release")
            r = await server.get(
                "/lwork/mobile1/callback", params={"session_id": other["session_id"]}
            )
            assert json.loads(unwrap_response(r.json()["data_enc"])) == {
                "status": "ok", "local": "idle", "remote": "idle"
            }  # fmt: skip
            assert (await start(server, body))["status"] == "ok"  # alice's slot is free again


async def test_remote_hanging_up_ends_local(server_factory: Factory, tmp_path: Path) -> None:
    async with two_phones(tmp_path, "uas_callback_remote_hangs_up.xml") as (
        port,
        sipp,
        local_media,
        remote_media,
    ):
        async with server_factory(**trunk_settings(port)) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            await allow_local(server, ALICE)
            alice.rtp.close()
            sid = (await start(server, {"uuid": ALICE, "local": LOCAL, "remote": REMOTE}))[
                "session_id"
            ]
            await finished(sipp)  # remote's BYE answered, and local got lwork's BYE
            assert await until_legs(server, sid, ("release", "release")) == ("release", "release")


async def test_unanswered_local_is_cancelled_at_ring_timeout(
    server_factory: Factory, tmp_path: Path
) -> None:
    port = free_udp_port()
    sipp = await carrier(tmp_path, "uas_no_answer.xml", port, 1)
    settings = trunk_settings(port)
    settings["sip"]["ring_timeout_s"] = 1.0
    try:
        async with server_factory(**settings) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            await allow_local(server, ALICE)
            alice.rtp.close()
            sid = (await start(server, {"uuid": ALICE, "local": LOCAL, "remote": REMOTE}))[
                "session_id"
            ]
            assert await until_legs(server, sid, ("ring", "idle")) == ("ring", "idle")
            await finished(sipp)  # lwork CANCELled the INVITE
            assert await until_legs(server, sid, ("release", "release")) == ("release", "release")
    finally:
        if sipp.returncode is None:
            sipp.kill()


async def test_deactivating_the_account_ends_its_callback(server_factory: Factory) -> None:
    settings = trunk_settings(0)
    settings["calls"]["account_sweep_s"] = 3600  # the service's own path, not the sweep
    with silent_proxy() as port:
        settings["sip"]["proxy_port"] = port
        async with server_factory(**settings) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            await allow_local(server, ALICE)
            alice.rtp.close()
            provisioning = server.services.provisioning
            assert provisioning is not None
            await provisioning.open(ALICE, "boss-pw", "dth", time.time())
            body = {"uuid": ALICE, "local": LOCAL, "remote": REMOTE}
            sid = (await start(server, body))["session_id"]
            assert await legs(server, sid) == ("idle", "idle")
            await provisioning.set_active(ALICE, False)
            assert await legs(server, sid) == ("release", "release")


async def test_the_sweep_ends_a_callback_of_an_account_deactivated_elsewhere(
    server_factory: Factory,
) -> None:
    settings = trunk_settings(0)
    settings["calls"]["account_sweep_s"] = 0.5
    with silent_proxy() as port:
        settings["sip"]["proxy_port"] = port
        async with server_factory(**settings) as server:
            alice = await make_app(server, ALICE, "alice-phone")
            await allow_local(server, ALICE)
            alice.rtp.close()
            # another process's provisioning service: it tells this server nothing
            elsewhere = ProvisioningService(server.services.account_store,
                                            server.services.passwords)  # fmt: skip
            await elsewhere.open(ALICE, "boss-pw", "dth", time.time())
            body = {"uuid": ALICE, "local": LOCAL, "remote": REMOTE}
            sid = (await start(server, body))["session_id"]
            await elsewhere.set_active(ALICE, False)
            assert await until_legs(server, sid, ("release", "release")) == ("release", "release")
