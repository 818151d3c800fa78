"""NMSI over real TCP (CONTRACT §9, ``original-behavior.md`` §10), with a peer that builds its
frames byte by byte from the documented header: the two-stage login, heartbeats, each command's
effect in the database, the acks, and bad input answered or hung up on, never a crash."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from lwork.boss.audit import AuditTrail

from conftest import LiveServer
from fakes.nmsi_client import HEARTBEAT, NmsiPeer, frame

USER, PASSWORD = "oss", "nmsi-pass-1"
SDN, OTHER, DID = "02150001234", "02150009999", "02160001111"
PWD = "e10adc3949ba59abbe56e057f20f883e"

Factory = Callable[..., Any]


@contextlib.asynccontextmanager
async def nmsi(factory: Factory, **boss: Any) -> AsyncIterator[tuple[LiveServer, NmsiPeer]]:
    settings = {"nmsi_enabled": True, "nmsi_port": 0, "nmsi_user": USER,
                "nmsi_password": PASSWORD, **boss}  # fmt: skip
    async with factory(boss=settings, billing={"signup_gift_minutes": 0}) as server:
        address = server.services.nmsi_address
        assert address is not None
        peer = await NmsiPeer.connect(address)
        try:
            yield server, peer
        finally:
            await peer.close()


async def provisioned(server: LiveServer, account: str = SDN) -> Any:
    return await server.services.account_store.provisioned(account)


async def test_the_two_logins_in_order_and_their_acks(server_factory: Factory) -> None:
    async with nmsi(server_factory) as (_, peer):
        early = await peer.command(f'2100:1="{USER}",2="{PASSWORD}";', eid=0x0102030405060708)
        assert (early.command, early.retn) == ("2100", 90001)
        # The ack: type 2, the request's EID and TID, the RETN in the ack code field too.
        assert (early.type, early.eid, early.code, early.fup, early.cpid) == (
            2, 0x0102030405060708, 90001, 0, 1)  # fmt: skip
        wrong = await peer.command('90000:1="oss",2="guess";')
        assert wrong.retn == 90004
        assert (await peer.command(f'90000:1="{USER}",2="{PASSWORD}";')).retn == 0
        assert (await peer.command(f'90000:1="{USER}",2="{PASSWORD}";')).retn == 90002
        before = await peer.command(f'CREATE_SIPREG_USER:SDN="{SDN}",PASSWORD="{PWD}";')
        assert before.retn == 90010  # the first stage alone is not a login
        assert (await peer.command(f'2100:1="{USER}",2="{PASSWORD}";')).retn == 0
        assert (await peer.command(f'2100:1="{USER}",2="{PASSWORD}";')).retn == 90002
        opened = await peer.command(f'CREATE_SIPREG_USER:SDN="{SDN}",PASSWORD="{PWD}";')
        assert (opened.command, opened.retn, opened.desc) == ("CREATE_SIPREG_USER", 0, None)
        assert await provisioned(_) is not None
        assert (await peer.command("2101;")).retn == 0
        after = await peer.command(f'DELETE_SDN:SDN1="{SDN}";')
        assert after.retn == 90010
        assert (await provisioned(_)).pwd_hash != "!closed"


async def test_commands_before_login_change_nothing(server_factory: Factory) -> None:
    async with nmsi(server_factory) as (server, peer):
        ack = await peer.command(f'CREATE_SIPREG_USER:SDN="{SDN}",PASSWORD="{PWD}";')
        assert ack.retn == 90010
        assert await provisioned(server) is None


async def test_a_dth_account_from_create_to_delete(server_factory: Factory) -> None:
    async with nmsi(server_factory) as (server, peer):
        await peer.login(USER, PASSWORD)
        created = await peer.command(f'CREATE_SDN:SDN1="{SDN}",DAS=5;')
        assert created.retn == 0
        assert (await peer.command('CREATE_SDN:SDN1="",DAS=5;')).desc == "sdn empty"
        # Unquoted digits are strings like any value: the app's activation password matches.
        ack = await peer.command(f"CREATE_SIPREG_USER:SDN={SDN},PASSWORD=123456;")
        assert (ack.retn, ack.desc) == (0, None)
        again = await peer.command(f"CREATE_SIPREG_USER:SDN={SDN},PASSWORD=654321;")
        assert (again.retn, again.desc) == (1, "account_already_exist")
        record = await provisioned(server)
        assert (record.group_id, record.active, record.did) == ("dth", True, None)

        register = {"uuid": SDN, "device_id": "d", "pwd": PWD, "group_id": "dth",
                    "name": "dora", "auth_code": "123456"}  # fmt: skip
        r = await server.post("/lwork/mobile/register", register)
        assert r.json()["status"] == "ok", r.text

        off = await peer.command(f'MODIFY_SUB_ATTR:SDN1="{SDN}",NOTINUSE=1;')
        assert off.retn == 0
        assert (await provisioned(server)).active is False
        assert (await peer.command(f'modify_sub_attr:sdn1="{SDN}",notinuse="0";')).retn == 0
        assert (await provisioned(server)).active is True

        bound = await peer.command(f'CREATE_MSN:NUM="{SDN}",SUBNUM="{DID}";')
        assert bound.retn == 0
        assert (await provisioned(server)).did == DID
        await peer.command(f'CREATE_SIPREG_USER:SDN="{OTHER}",PASSWORD="x1";')
        taken = await peer.command(f'CREATE_MIXSUB:NUM="{OTHER}",SUBNUM="{DID}";')
        assert (taken.retn, taken.desc) == (1, "phone_already_bound")
        unbound = await peer.command(f'DELETE_MSN:SUBNUM="{DID}";')
        assert unbound.retn == 0
        assert (await provisioned(server)).did is None
        nothing = await peer.command(f'DELETE_MIXSUB:SUBNUM="{DID}";')
        assert (nothing.retn, nothing.desc) == (0, "phone_not_bound")
        assert (await peer.command(f'CREATE_MIXSUB:NUM="{SDN}",SUBNUM="{DID}";')).retn == 0
        assert (await peer.command(f'DELETE_MIXSUB:SUBNUM="{DID}";')).retn == 0
        assert (await provisioned(server)).did is None

        deleted = await peer.command(f'DELETE_SDN:SDN1="{SDN}";')
        assert deleted.retn == 0
        r = await server.post("/lwork/mobile/login", {"acc": SDN, "pwd": PWD, "device_id": "d"})
        assert r.json()["status"] == "failed"
        gone = await peer.command('DELETE_SDN:SDN1="02150000000";')
        assert (gone.retn, gone.desc) == (1, "account_not_exist")

        unknown = await peer.command('LST_SUB:SDN1="1";')
        assert (unknown.command, unknown.retn, unknown.desc) == ("LST_SUB", 0, "unhandled.")

        trail = await AuditTrail(server.services.engine).entries(SDN)
        assert [(e.actor, e.action, e.result) for e in trail] == [
            ("nmsi:oss", "create_sdn", "ok"), ("nmsi:oss", "open", "ok"),
            ("nmsi:oss", "open", "account_already_exist"), ("nmsi:oss", "deactivate", "ok"),
            ("nmsi:oss", "activate", "ok"), ("nmsi:oss", "bind", "ok"),
            ("nmsi:oss", "unbind", "ok"), ("nmsi:oss", "bind", "ok"),
            ("nmsi:oss", "unbind", "ok"), ("nmsi:oss", "close", "ok"),
        ]  # fmt: skip
        assert all("pwd" not in e.detail for e in trail)


async def test_bad_fields_are_refused_with_retn_1(server_factory: Factory) -> None:
    async with nmsi(server_factory) as (server, peer):
        await peer.login(USER, PASSWORD)
        long = "9" * 65
        ack = await peer.command(f'CREATE_SIPREG_USER:SDN="{long}",PASSWORD="p";')
        assert (ack.retn, ack.desc) == (1, "invalid_params")
        ack = await peer.command(f'CREATE_SIPREG_USER:SDN="{SDN}";')
        assert (ack.retn, ack.desc) == (1, "invalid_params")
        ack = await peer.command('MODIFY_SUB_ATTR:SDN1="02150000000",NOTINUSE=1;')
        assert (ack.retn, ack.desc) == (1, "account_not_exist")
        assert await provisioned(server) is None


async def test_garbage_text_is_answered_and_the_connection_kept(server_factory: Factory) -> None:
    async with nmsi(server_factory) as (_, peer):
        for text in (b"hello", b'CREATE_SDN:SDN1="x;', b"CREATE SDN:;", b"\xff\xfe;",
                     b"CMD:A=1,,B=2;", b"", b":A=1;"):  # fmt: skip
            await peer.send(frame(text, tid=3))
            ack = await peer.ack()
            assert (ack.command, ack.retn, ack.tid) == ("Unknow", 90020, 3), text
            assert ack.desc and ack.desc.replace(" ", "").isalpha(), ack.desc  # says why
        await peer.login(USER, PASSWORD)


async def test_wrong_version_and_type_are_answered(server_factory: Factory) -> None:
    async with nmsi(server_factory) as (_, peer):
        await peer.send(frame(b"90001;", version=2, tid=4))
        assert (await peer.ack()).retn == 90021
        await peer.send(frame(b"90001;", type_=9, tid=5))
        ack = await peer.ack()
        assert (ack.retn, ack.tid) == (90023, 5)
        await peer.login(USER, PASSWORD)


async def test_wrong_magic_is_answered_then_hung_up(server_factory: Factory) -> None:
    async with nmsi(server_factory) as (server, peer):
        await peer.send(frame(b"90001;", magic=b"\xaa\x55\x55\xaa"))
        assert (await peer.ack()).retn == 90024
        assert await peer.closed()
        assert await after_abuse_a_new_peer_logs_in(server)


async def test_impossible_lengths_are_answered_then_hung_up(server_factory: Factory) -> None:
    for length in (10, 38, 10**9):
        async with nmsi(server_factory) as (server, peer):
            await peer.send(frame(b"90001;", length=length))
            assert (await peer.ack()).retn == 90020
            assert await peer.closed()
            assert await after_abuse_a_new_peer_logs_in(server)


async def test_a_frame_in_pieces_and_frames_together(server_factory: Factory) -> None:
    async with nmsi(server_factory) as (_, peer):
        login = frame(f'90000:1="{USER}",2="{PASSWORD}";'.encode(), tid=1)
        for i in range(len(login)):
            await peer.send(login[i : i + 1])
        assert (await peer.ack()).retn == 0
        both = HEARTBEAT + frame(f'2100:1="{USER}",2="{PASSWORD}";'.encode(), tid=2) + HEARTBEAT
        await peer.send(both + frame(b"UNKNOWN_CMD;", tid=3))
        assert [(await peer.ack()).retn for _ in range(2)] == [0, 0]


async def test_heartbeats_keep_a_connection_silence_ends_it(server_factory: Factory) -> None:
    async with nmsi(server_factory, nmsi_heartbeat_s=0.2) as (server, peer):
        await peer.login(USER, PASSWORD)
        for _ in range(10):  # 1 s: five heartbeat intervals, never three silent
            await peer.send(HEARTBEAT)
            await asyncio.sleep(0.1)
        assert (await peer.command("90001;")).retn == 0  # heartbeats are never acked
        loop = asyncio.get_running_loop()
        silent_since = loop.time()
        assert await peer.closed(timeout=5)
        assert 0.5 <= loop.time() - silent_since < 3


async def test_a_heartbeat_flood_is_hung_up(server_factory: Factory) -> None:
    async with nmsi(server_factory) as (server, peer):
        await peer.send(HEARTBEAT * 500)
        assert await peer.closed()
        assert await after_abuse_a_new_peer_logs_in(server)


async def test_guessing_the_password_is_hung_up(server_factory: Factory) -> None:
    async with nmsi(server_factory) as (server, peer):
        for guess in ("a", "b", "c"):
            assert (await peer.command(f'90000:1="{USER}",2="{guess}";')).retn == 90004
        assert await peer.closed()


async def test_a_peer_gone_mid_frame_leaves_the_server_serving(server_factory: Factory) -> None:
    async with nmsi(server_factory) as (server, peer):
        await peer.send(frame(b"90001;")[:20])
        await peer.close()
        assert await after_abuse_a_new_peer_logs_in(server)


async def after_abuse_a_new_peer_logs_in(server: LiveServer) -> bool:
    address = server.services.nmsi_address
    assert address is not None
    peer = await NmsiPeer.connect(address)
    try:
        await peer.login(USER, PASSWORD)
    finally:
        await peer.close()
    return True


async def test_stopping_the_server_hangs_up_its_peers_cleanly(
    server_factory: Factory, caplog: Any
) -> None:
    settings = {"nmsi_enabled": True, "nmsi_port": 0, "nmsi_user": USER,
                "nmsi_password": PASSWORD}  # fmt: skip
    async with server_factory(boss=settings) as server:
        peer = await NmsiPeer.connect(server.services.nmsi_address)
        await peer.login(USER, PASSWORD)
    assert await peer.closed(timeout=5)
    await peer.close()
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
