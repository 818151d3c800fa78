"""Impersonation attempts against a live server with default settings (issue #13, CONTRACT §3).

The victim's app is logged in and holds its long poll from 127.0.0.1; the stranger knows the
victim's phone number (the uuid: public) and sends from 127.0.0.2, another address of this
machine, over real HTTP. Rows 1, 3 and 10 are those of original-behavior.md §12.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import insert

from lwork.ids import new_token, token_digest
from lwork.storage.tables import sessions

from conftest import LiveServer

PWD = "e10adc3949ba59abbe56e057f20f883e"
NEW_PWD = "c33367701511b4f6020ec61ded352059"
VICTIM = "13800138000"
DEVICE = "victim-phone"
STRANGER_IP = "127.0.0.2"
HELD = {"push": {"hold_s": 30}}
NO_LOGINED = {"status": "failed", "reason": "no_logined"}
M = "/lwork/mobile/"


async def victim(server: LiveServer, device: str = DEVICE) -> str:
    """Registers and logs in the victim; returns the login token."""
    await server.post("/lwork/sms/auth_code", {"uuid": VICTIM, "type": "register"})
    code = server.gateway.last_code(VICTIM)
    body = {"uuid": VICTIM, "device_id": device, "auth_code": code, "pwd": PWD,
            "group_id": "common"}  # fmt: skip
    r = await server.post(M + "register", body)
    assert r.json() == {"status": "ok"}, r.text
    r = await server.post(M + "login", {"acc": VICTIM, "pwd": PWD, "device_id": device})
    token: str = r.json()["token"]
    return token


@asynccontextmanager
async def stranger(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=STRANGER_IP)
    async with httpx.AsyncClient(base_url=server.url, transport=transport, timeout=30) as client:
        yield client


def call(dev_id: str | None = DEVICE, type_: str = "pstn") -> dict[str, Any]:
    body = {"user_id": VICTIM, "caller_phone": VICTIM, "callee_phone": "02079460001",
            "sdp": {"ip": ["127.0.0.1"], "port": 40000}, "userclass": "registered",
            "type": type_, "acc": VICTIM, "clidata": {}}  # fmt: skip
    return body if dev_id is None else {**body, "dev_id": dev_id}


CALLBACK = {"uuid": VICTIM, "local": VICTIM, "remote": "02079460001"}


async def ended_within(task: asyncio.Task[httpx.Response], seconds: float) -> Any:
    done, _ = await asyncio.wait({task}, timeout=seconds)
    assert done, f"the held poll was not answered within {seconds} s"
    return task.result().json()


async def test_a_balance_is_not_read_with_the_uuid(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**HELD) as server:
        await victim(server)
        async with server.polling(VICTIM, DEVICE), stranger(server) as them:
            for body in ({"uuid": VICTIM}, {"uuid": VICTIM, "device_id": DEVICE}):
                assert (await them.post(M + "get_coin", json=body)).json() == NO_LOGINED
            mine = (await server.post(M + "get_coin", {"uuid": VICTIM})).json()
            assert mine == {"status": "ok", "coins": 0, "gift_coins": 300, "month_consumed": 0}


async def test_a_stranger_cannot_register_their_push_token_for_the_user(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**HELD) as server:
        await victim(server)
        store = server.services.account_store
        async with server.polling(VICTIM, DEVICE), stranger(server) as them:
            for extra in ({}, {"device_id": DEVICE}):
                r = await them.post(M + "baidu_push_register", json={
                    "account": VICTIM, "caller": VICTIM, "user_id": "x",
                    "channel_id": "stranger-fcm-token", "provider": "fcm", **extra})  # fmt: skip
                assert r.json() == NO_LOGINED
            assert await store.push_registrations(VICTIM, DEVICE) == {}
            own = {"account": VICTIM, "user_id": "x", "channel_id": "own-token", "provider": "fcm"}
            r = await server.post(M + "baidu_push_register", own)
            assert r.json() == {"status": "ok"}
        assert await store.push_registrations(VICTIM, DEVICE) == {"fcm": "own-token"}


async def test_a_phone_call_is_not_started_for_the_user_from_another_address(
    server_factory,
) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**HELD) as server:
        await victim(server)
        async with server.polling(VICTIM, DEVICE), stranger(server) as them:
            # even knowing the device id, the stranger is not where the device's poll is
            for body in (call(), call(dev_id=None)):
                assert (await them.post(M + "voip/calls", json=body)).json() == NO_LOGINED
            assert server.services.calls.active == 0
            # from the poll's address, without the device id: a missing device id fails
            assert (await server.post(M + "voip/calls", call(dev_id=None))).json() == NO_LOGINED
            assert (await server.post(M + "voip/calls", call())).json()["status"] == "ok"


async def test_a_callback_is_not_started_on_the_users_balance(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**HELD) as server:
        await victim(server)
        async with server.polling(VICTIM, DEVICE), stranger(server) as them:
            r = await them.post(M + "callback", json={**CALLBACK, "remote": "0900123456"})
            assert r.json() == NO_LOGINED
            assert (await server.post(M + "callback", CALLBACK)).json()["status"] == "ok"


async def test_modify_pwd_ends_the_other_sessions(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**HELD) as server:
        await victim(server)
        # A thief's session live beside the victim's (older), as racing logins left them before
        # start_session locked the account: such rows stay live in existing databases.
        thief_token = new_token()
        async with server.services.engine.begin() as conn:
            await conn.execute(insert(sessions).values(
                token_hash=token_digest(thief_token), uuid=VICTIM, device_id="thief-phone",
                os_type="android", created_at=1.0, last_seen=time.time()))  # fmt: skip
        thief = {"Authorization": f"Bearer {thief_token}"}
        add_info = {"uuid": VICTIM, "device_id": "thief-phone", "info": "pwned"}
        assert (await server.post(M + "add_info", add_info, headers=thief)).json()["status"] == "ok"
        async with (
            server.polling(VICTIM, "thief-phone", source=STRANGER_IP) as thief_poll,
            server.polling(VICTIM, DEVICE),
        ):
            change = {"uuid": VICTIM, "device_id": DEVICE, "old_pwd": PWD, "pwd": NEW_PWD}
            r = await server.post(M + "modify_pwd", change)
            assert r.json() == {"status": "ok", "name": ""}
            assert await ended_within(thief_poll, 5) == {
                "status": "ok", "data": [{"event": "unlogined"}], "clidata": None}  # fmt: skip
            assert (await server.post(M + "add_info", add_info, headers=thief)).json() == NO_LOGINED
            # the device that changed the password stays logged in
            mine = {"uuid": VICTIM, "device_id": DEVICE, "info": "mine"}
            assert (await server.post(M + "add_info", mine)).json() == {"status": "ok"}


async def test_modify_pwd_needs_the_devices_session(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**HELD) as server:
        await victim(server)
        change = {"uuid": VICTIM, "device_id": DEVICE, "old_pwd": PWD, "pwd": NEW_PWD}
        async with server.polling(VICTIM, DEVICE), stranger(server) as them:
            # a stranger who learnt the password cannot change it from elsewhere
            assert (await them.post(M + "modify_pwd", json=change)).json() == NO_LOGINED
            no_device = {k: v for k, v in change.items() if k != "device_id"}
            assert (await server.post(M + "modify_pwd", no_device)).json() == NO_LOGINED
        r = await server.post(M + "login", {"acc": VICTIM, "pwd": PWD, "device_id": DEVICE})
        assert r.json()["status"] == "ok"


async def test_row_1_the_uuid_alone_authorises_nothing(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Even from the very address of the victim's poll (a shared NAT), public data fails."""
    async with server_factory(**HELD) as server:
        await victim(server)
        guess = "13800138000"
        async with server.polling(VICTIM, DEVICE):
            attempts = [
                ("voip/calls", call(dev_id=None, type_="p2p")),
                ("voip/calls", call(dev_id=guess, type_="p2p")),
                ("voip/calls", call(dev_id=None)),
                ("callback", {**CALLBACK, "uuid": VICTIM, "token": "forged"}),
                ("get_coin", {"uuid": VICTIM, "device_id": guess}),
                ("add_info", {"uuid": VICTIM, "device_id": guess, "info": 1}),
                ("baidu_push_register", {"account": VICTIM, "device_id": guess,
                                         "channel_id": "x"}),
                ("modify_pwd", {"uuid": VICTIM, "device_id": guess, "old_pwd": PWD,
                                "pwd": NEW_PWD}),
            ]  # fmt: skip
            for name, body in attempts:
                assert (await server.post(M + name, body)).json() == NO_LOGINED, name
            assert server.services.calls.active == 0


async def test_row_3_logout_revokes_call_rights(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**HELD) as server:
        token = await victim(server)
        async with server.polling(VICTIM, DEVICE) as held:
            r = await server.post(M + "logout", {"uuid": VICTIM, "device_id": DEVICE})
            assert r.json() == {"status": "ok"}
            # the device's held poll learns it at once, not at the end of its 30 s hold
            assert (await ended_within(held, 5))["data"] == [{"event": "unlogined"}]
        for body in (call(type_="p2p"), call(), {**call(), "token": token}):
            assert (await server.post(M + "voip/calls", body)).json() == NO_LOGINED
        assert (await server.post(M + "callback", CALLBACK)).json() == NO_LOGINED
        assert (await server.long_poll(VICTIM, DEVICE))["data"] == [{"event": "unlogined"}]


async def test_row_10_the_push_channel_belongs_to_the_devices_session(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Fix for row 10, within CONTRACT §5: public data (acc, self_phone) gets ``unlogined``, and
    neither takes the device's poll over nor moves the address that vouches for spending; a
    session ended by a password reset answers its held poll at once."""
    async with server_factory(**HELD) as server:
        await victim(server)
        async with server.polling(VICTIM, DEVICE) as held, stranger(server) as them:
            for device in (VICTIM, "x", "android", DEVICE.upper()):
                r = await them.post("/channel/push_service", json={
                    "acc": VICTIM, "device_id": device, "self_phone": VICTIM})  # fmt: skip
                assert r.json()["data"] == [{"event": "unlogined"}]
            assert (await them.post(M + "get_coin", json={"uuid": VICTIM})).json() == NO_LOGINED
            assert not held.done()  # not replaced: the device's poll gets its events
            await server.services.push.notify(VICTIM, {"event": "for_the_device"})
            assert (await ended_within(held, 5))["data"] == [{"event": "for_the_device"}]
        async with server.polling(VICTIM, DEVICE) as held:
            await server.post("/lwork/sms/auth_code", {"uuid": VICTIM, "type": "resetpwd"})
            code = server.gateway.last_code(VICTIM)
            reset = {"uuid": VICTIM, "auth_code": code, "pwd": NEW_PWD, "group_id": "common"}
            assert (await server.post(M + "forget_pwd", reset)).json()["status"] == "ok"
            assert (await ended_within(held, 5))["data"] == [{"event": "unlogined"}]


async def test_with_require_token_only_the_token_counts(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(auth={"require_token": True}, **HELD) as server:
        token = await victim(server)
        bearer = {"Authorization": f"Bearer {token}"}
        async with server.polling(VICTIM, DEVICE) as held:
            # the held poll without a token was refused: the device id is not enough
            assert (await ended_within(held, 5))["data"] == [{"event": "unlogined"}]
        r = await server.post("/channel/push_service",
                              {"acc": VICTIM, "device_id": DEVICE, "token": "x" * 43})  # fmt: skip
        assert r.json()["data"] == [{"event": "unlogined"}]
        body = {"uuid": VICTIM, "device_id": DEVICE}
        assert (await server.post(M + "get_coin", body)).json() == NO_LOGINED
        assert (await server.post(M + "voip/calls", call(type_="p2p"))).json() == NO_LOGINED
        assert (await server.post(M + "get_coin", body, headers=bearer)).json()["status"] == "ok"
        # a token is judged alone: from any address, with no poll held
        async with stranger(server) as them:
            r = await them.post(M + "callback", json={**CALLBACK, "token": token})
            assert r.json()["status"] == "ok"
            r = await them.post(M + "voip/calls", json=call(), headers=bearer)
            assert r.json()["status"] == "ok"
