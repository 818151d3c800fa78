"""The long-poll push channel, every row of CONTRACT §5, through real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from redis.asyncio import Redis

from conftest import LiveServer

PWD = "e10adc3949ba59abbe56e057f20f883e"
PHONE = "13800138000"
FAST = {"push": {"hold_s": 1.5}}


async def account(server: LiveServer, phone: str = PHONE, device: str = "A") -> str:
    await server.post("/lwork/sms/auth_code", {"uuid": phone, "type": "register"})
    code = server.gateway.last_code(phone)
    r = await server.post(
        "/lwork/mobile/register",
        {"uuid": phone, "device_id": device, "auth_code": code, "pwd": PWD, "group_id": "common"},
    )
    assert r.json() == {"status": "ok"}
    r = await server.post("/lwork/mobile/login", {"acc": phone, "pwd": PWD, "device_id": device})
    token: str = r.json()["token"]
    return token


async def poll(server: LiveServer, device: str = "A", phone: str = PHONE, **extra: Any) -> Any:
    body = {"acc": phone, "device_id": device, "self_phone": phone, **extra}
    r = await server.post("/channel/push_service", body)
    assert r.status_code == 200, r.text
    return r.json()


async def until_held(server: LiveServer, count: int = 1) -> None:
    for _ in range(500):
        if server.services.polls.held == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} held polls, have {server.services.polls.held}")


async def test_not_logged_in(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**FAST) as server:
        assert await poll(server, clidata={"n": 1}) == {
            "status": "ok",
            "data": [{"event": "unlogined"}],
            "clidata": {"n": 1},
        }


async def test_shake_hand_after_the_hold_and_presence(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**FAST) as server:
        await account(server)
        query = {"users": [{"acc": "a", "phone": PHONE}]}
        r = await server.post("/lwork/mobile/query_status", query)
        assert r.json()["data"][0]["state"] == "offline"  # logged in, never polled
        answer = await poll(server, clidata={"seq": 7})
        assert answer == {"status": "ok", "data": [{"event": "shake_hand"}], "clidata": {"seq": 7}}
        assert server.services.polls.held == 0
        r = await server.post("/lwork/mobile/query_status", query)
        assert r.json()["data"][0]["state"] == "online"
        await server.post("/lwork/mobile/logout", {"uuid": PHONE, "device_id": "A"})
        r = await server.post("/lwork/mobile/query_status", query)
        assert r.json()["data"][0]["state"] == "offline"
        assert (await poll(server))["data"] == [{"event": "unlogined"}]


async def test_pending_events_arrive_at_once_oldest_first_and_only_once(
    server_factory,  # type: ignore[no-untyped-def]
) -> None:
    async with server_factory(**FAST) as server:
        await account(server)
        push = server.services.push
        for n in range(3):
            assert await push.notify(PHONE, {"event": "note", "n": n}) is not None
        answer = await poll(server)
        assert answer["data"] == [{"event": "note", "n": n} for n in range(3)]
        # acknowledged once sent: the next poll waits for new events
        assert (await poll(server))["data"] == [{"event": "shake_hand"}]


async def test_an_event_during_the_hold_ends_the_poll(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(push={"hold_s": 30}) as server:
        await account(server)
        held = asyncio.create_task(poll(server))
        await until_held(server)
        invite = {"event": "p2p_inform_called", "caller": "13900000000", "opdata": {"x": 1}}
        await server.services.push.notify(PHONE, invite, call_id="call-1")
        answer = await asyncio.wait_for(held, 5)
        assert answer["data"] == [invite]


async def test_a_newer_poll_from_the_same_device_answers_overtime(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(push={"hold_s": 30}) as server:
        await account(server)
        first = asyncio.create_task(poll(server, clidata="first"))
        await until_held(server)
        second = asyncio.create_task(poll(server, clidata="second"))
        assert await asyncio.wait_for(first, 5) == {
            "status": "failed",
            "reason": "overtime",
            "clidata": "first",
        }
        await server.services.push.notify(PHONE, {"event": "x"})
        assert (await asyncio.wait_for(second, 5))["data"] == [{"event": "x"}]


async def test_a_flood_of_polls_holds_one(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(push={"hold_s": 30}) as server:
        await account(server)
        polls = []
        for _ in range(20):
            polls.append(asyncio.create_task(poll(server)))
            await asyncio.sleep(0.02)
        for _ in range(500):  # every poll has reached the channel: 19 replaced, 1 held
            if server.services.polls.replaced == 19:
                break
            await asyncio.sleep(0.01)
        await until_held(server)
        await server.services.push.notify(PHONE, {"event": "x"})
        answers = await asyncio.wait_for(asyncio.gather(*polls), 10)
        reasons = [a.get("reason") for a in answers]
        assert reasons.count("overtime") == 19
        assert [a["data"] for a in answers if a["status"] == "ok"] == [[{"event": "x"}]]
        await until_held(server, 0)


async def test_login_elsewhere_kicks_a_held_poll(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(push={"hold_s": 30}) as server:
        await account(server, device="A")
        held = asyncio.create_task(poll(server, device="A"))
        await until_held(server)
        r = await server.post("/lwork/mobile/login", {"acc": PHONE, "pwd": PWD, "device_id": "B"})
        assert r.json()["status"] == "ok"
        assert (await asyncio.wait_for(held, 5))["data"] == [{"event": "login_otherwhere"}]
        # and later polls of the old device keep hearing it; the new device is fine
        assert (await poll(server, device="A"))["data"] == [{"event": "login_otherwhere"}]
        await server.services.push.notify(PHONE, {"event": "for B"})
        assert (await poll(server, device="B"))["data"] == [{"event": "for B"}]


async def test_events_survive_a_restart(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**FAST) as server:
        await account(server)
        await server.services.push.notify(PHONE, {"event": "kept"})
    async with server_factory(**FAST) as restarted:
        assert (await poll(restarted))["data"] == [{"event": "kept"}]


async def test_invitations_expire_and_leave_with_their_call(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(push={"hold_s": 1.0, "invite_ttl_s": 0.3}) as server:
        await account(server)
        push = server.services.push
        await push.notify(PHONE, {"event": "stale"}, call_id="c-old")
        await push.notify(PHONE, {"event": "ended"}, call_id="c-ended")
        await push.cancel_call("c-ended")
        await asyncio.sleep(0.4)
        assert (await poll(server))["data"] == [{"event": "shake_hand"}]


async def test_mailbox_is_bounded(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(push={"hold_s": 1.0, "mailbox_size": 3}) as server:
        await account(server)
        for n in range(5):
            await server.services.push.notify(PHONE, {"event": "e", "n": n})
        assert [e["n"] for e in (await poll(server))["data"]] == [2, 3, 4]
        metrics = (await server.get("/metrics")).json()
        assert metrics["mailbox_dropped"] == 2


async def test_a_client_that_goes_away_releases_its_poll(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(push={"hold_s": 30}) as server:
        await account(server)
        async with httpx.AsyncClient() as other:
            task = asyncio.create_task(
                other.post(
                    server.url + "/channel/push_service", json={"acc": PHONE, "device_id": "A"}
                )
            )
            await until_held(server)
            task.cancel()
        await until_held(server, 0)
        assert (await server.get("/metrics")).json()["held_polls"] == 0
        # an event raised meanwhile is still waiting for the next poll
        await server.services.push.notify(PHONE, {"event": "later"})
        assert (await poll(server))["data"] == [{"event": "later"}]


async def test_bad_polls(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(**FAST) as server:
        r = await server.post("/channel/push_service", {"device_id": "A"})
        assert (r.status_code, r.json()["field"]) == (400, "acc")
        r = await server.post(
            "/channel/push_service", {"acc": PHONE, "device_id": "A", "clidata": "x" * 5000}
        )
        assert (r.status_code, r.json()["field"]) == (400, "clidata")
        r = await server.post("/channel/push_service", {"acc": ["x"], "device_id": "A"})
        assert r.status_code == 400
        # an unknown account or device is simply not logged in
        assert (await poll(server, phone="19999999999", device="zz"))["data"] == [
            {"event": "unlogined"}
        ]


async def test_require_token_mode(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(push={"hold_s": 0.5}, auth={"require_token": True}) as server:
        token = await account(server)
        assert (await poll(server))["data"] == [{"event": "unlogined"}]
        assert (await poll(server, token="wrong"))["data"] == [{"event": "unlogined"}]
        assert (await poll(server, token=token))["data"] == [{"event": "shake_hand"}]


async def test_held_polls_reread_their_mailbox_after_a_bus_outage(
    server_factory,  # type: ignore[no-untyped-def]
    redis_url: str,
) -> None:
    async with server_factory(bus={"url": redis_url}, push={"hold_s": 30}) as server:
        await account(server)
        held = asyncio.create_task(poll(server))
        await until_held(server)
        admin = Redis.from_url(redis_url)
        try:
            await admin.client_kill_filter(_type="pubsub")
        finally:
            await admin.aclose()
        # answered long before the 30 s hold: nothing was waiting, so a handshake
        answer = await asyncio.wait_for(held, 5)
        assert answer["data"] == [{"event": "shake_hand"}]


async def _hold_times(server: LiveServer, phones: list[str]) -> list[float]:
    """Seconds each phone's first poll was held, all polled at once."""
    loop = asyncio.get_running_loop()

    async def held_for(phone: str) -> float:
        start = loop.time()
        assert (await poll(server, phone=phone))["data"] == [{"event": "shake_hand"}]
        return loop.time() - start

    return list(await asyncio.gather(*(held_for(phone) for phone in phones)))


async def test_polls_sent_together_end_spread_over_the_hold(server_factory) -> None:  # type: ignore[no-untyped-def]
    # Phones that reconnect together (a node's restart) must not stay in step: without the
    # spread every hold ends at once, and they re-poll as one burst every hold_s.
    phones = [f"1380013810{n}" for n in range(6)]
    async with server_factory(push={"hold_s": 1.0, "hold_spread": 0.5}) as server:
        for phone in phones:
            await account(server, phone=phone)
        held = await _hold_times(server, phones)
    assert all(0.45 <= s <= 1.5 for s in held), held
    assert max(held) - min(held) > 0.1, held
    phones = [f"1380013820{n}" for n in range(6)]  # the database outlives the first server
    async with server_factory(push={"hold_s": 1.0, "hold_spread": 0.0}) as server:
        for phone in phones:
            await account(server, phone=phone)
        held = await _hold_times(server, phones)
    assert all(s >= 0.95 for s in held), held
