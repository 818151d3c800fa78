"""Racing wake-up channels (issue 18): an incoming call's invitation is offered at once on the
callee's held long poll and on each of its push registrations (here Huawei Push Kit and the
JPush aggregator, as HTTPS fakes), every copy with the same ``session_id``; the app answers the
first, and a copy that arrives later can neither ring nor answer the call again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from conftest import LiveServer
from fakes.push_huawei import HuaweiPushFake
from fakes.push_jpush import JPushFake
from fakes.push_vendor import VendorPushFake
from fakes.tls import lwork_ca

PWD = "e10adc3949ba59abbe56e057f20f883e"
ALICE, BOB = "13800000001", "13900000002"
HUAWEI_TOKEN, JPUSH_ID = "device-token-1", "device-token-1"


@pytest.fixture
async def vendors() -> AsyncIterator[tuple[VendorPushFake, VendorPushFake]]:
    async with HuaweiPushFake().running() as huawei, JPushFake().running() as jpush:
        yield huawei, jpush


async def logged_in(server: LiveServer, phone: str, device: str) -> None:
    await server.post("/lwork/sms/auth_code", {"uuid": phone, "type": "register"})
    body = {"uuid": phone, "device_id": device, "auth_code": server.gateway.last_code(phone),
            "pwd": PWD, "group_id": "common"}  # fmt: skip
    assert (await server.post("/lwork/mobile/register", body)).json() == {"status": "ok"}
    r = await server.post("/lwork/mobile/login", {"acc": phone, "pwd": PWD, "device_id": device})
    assert r.json()["status"] == "ok"


async def register_channels(server: LiveServer, phone: str, device: str) -> None:
    """As the app does on start: while it holds a poll, it registers each channel it has."""
    async with server.polling(phone, device):
        for provider, token in (("huawei", HUAWEI_TOKEN), ("jpush", JPUSH_ID)):
            body = {"caller": phone, "account": phone, "user_id": "u", "channel_id": token,
                    "provider": provider}  # fmt: skip
            r = await server.post("/lwork/mobile/baidu_push_register", body)
            assert r.json() == {"status": "ok"}, r.text
    registrations = await server.services.account_store.push_registrations(phone, device)
    assert set(registrations) == {"huawei", "jpush"}


async def wait_for(predicate: Callable[[], Any], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_an_invitation_races_on_the_poll_and_every_vendor_and_is_answered_once(
    server_factory: Callable[..., Any], vendors: tuple[VendorPushFake, VendorPushFake]
) -> None:
    huawei, jpush = vendors
    push = {"hold_s": 30, "huawei": huawei.settings(), "jpush": jpush.settings()}  # type: ignore[attr-defined]
    async with server_factory(
        push=push, calls={"p2p_fallback_s": 30}, outbound_ca_file=lwork_ca().ca_file
    ) as server:
        await logged_in(server, ALICE, "alice-phone")
        async with server.polling(ALICE, "alice-phone"):
            pass  # Alice's address now vouches for her call (CONTRACT §3)
        await logged_in(server, BOB, "bob-phone")
        await register_channels(server, BOB, "bob-phone")

        async with server.polling(BOB, "bob-phone") as held:
            call = {
                "user_id": ALICE,
                "caller_phone": ALICE,
                "callee_phone": BOB,
                "sdp": {"ip": ["127.0.0.1"], "port": 40000},
                "userclass": "registered",
                "dev_id": "alice-phone",
                "type": "p2p",
                "acc": ALICE,
                "clidata": {},
            }
            started = (await server.post("/lwork/mobile/voip/calls", call)).json()
            assert started["status"] == "ok", started
            sid = started["session_id"]
            [polled] = (await asyncio.wait_for(held, 5)).json()["data"]
            # The poll was held, and the vendors are asked all the same.
            await wait_for(lambda: huawei.delivered and jpush.delivered)

        assert polled["event"] == "p2p_inform_called"
        copies = [polled] + [vendor.delivered[0].event["payload"] for vendor in vendors]
        assert [copy["opdata"]["session_id"] for copy in copies] == [sid, sid, sid]
        assert all(copy == polled for copy in copies)
        assert huawei.delivered[0].call_priority and jpush.delivered[0].call_priority

        # The app acts on the first copy to arrive ...
        first, late = copies[0]["opdata"], copies[1]["opdata"]
        answer = {
            "opdata": first,
            "caller_phone": ALICE,
            "callee_phone": BOB,
            "sdp": {"ip": ["127.0.0.1"], "port": 40002},
            "userclass": "",
            "clidata": {},
        }
        r = (await server.post("/lwork/mobile/p2p_answer", answer)).json()
        assert r["status"] == "ok" and r["session_id"] != sid
        status = await server.get("/lwork/mobile/voip/calls", params={"session_id": sid})
        assert status.json()["peer_status"] == "p2p_hookoff"
        # ... a later copy finds the call past p2p_idle, so the app does not ring for it, and
        # an answer sent with it anyway is refused: the call is answered once.
        peer = (await server.post("/lwork/mobile/p2p_poll", {"opdata": late})).json()
        assert peer["peer_status"] == "p2p_hookoff"
        again = {**answer, "opdata": late, "sdp": {"ip": ["127.0.0.1"], "port": 40004}}
        r = (await server.post("/lwork/mobile/p2p_answer", again)).json()
        assert r == {"status": "failed", "reason": "session_not_exist"}
        assert len(huawei.delivered) == 1 and len(jpush.delivered) == 1


async def test_account_events_still_go_to_the_vendor_only_when_no_poll_is_held(
    server_factory: Callable[..., Any], vendors: tuple[VendorPushFake, VendorPushFake]
) -> None:
    # Racing is for call invitations: an account event for a device that holds a poll is the
    # poll's alone (a vendor's notification for it would only clutter the phone's shade).
    huawei, jpush = vendors
    push = {"hold_s": 30, "huawei": huawei.settings(), "jpush": jpush.settings()}  # type: ignore[attr-defined]
    async with server_factory(push=push, outbound_ca_file=lwork_ca().ca_file) as server:
        await logged_in(server, BOB, "bob-phone")
        await register_channels(server, BOB, "bob-phone")
        async with server.polling(BOB, "bob-phone") as held:
            await server.services.push.notify(BOB, {"event": "note"})
            assert (await asyncio.wait_for(held, 5)).json()["data"] == [{"event": "note"}]
        await server.services.push.notify(BOB, {"event": "later"})  # no poll held now
        await wait_for(lambda: huawei.delivered and jpush.delivered)
        assert [d.event["event"] for d in (*huawei.delivered, *jpush.delivered)] == ["later"] * 2


async def test_a_hanging_vendor_holds_up_no_other_channel(
    server_factory: Callable[..., Any], vendors: tuple[VendorPushFake, VendorPushFake]
) -> None:
    huawei, jpush = vendors
    push = {"hold_s": 30, "huawei": huawei.settings(timeout_s=5.0), "jpush": jpush.settings()}  # type: ignore[attr-defined]
    async with server_factory(push=push, outbound_ca_file=lwork_ca().ca_file) as server:
        await logged_in(server, BOB, "bob-phone")
        await register_channels(server, BOB, "bob-phone")
        huawei.hang = True  # Huawei is asked first, and never answers
        invite = {"event": "p2p_inform_called", "caller": ALICE, "opdata": {"session_id": "s"}}
        await server.services.push.notify(BOB, invite, call_id="n1@@s")
        await wait_for(lambda: jpush.delivered, 1.5)
        await wait_for(lambda: huawei.send_requests == 1)  # asked, and still hanging
        assert huawei.delivered == []
