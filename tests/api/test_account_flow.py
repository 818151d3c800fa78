"""The whole account life cycle through real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json

from lwork.http.envelope import unwrap_response

from conftest import LiveServer

PHONE = "13800138000"
DEVICE = "device-A"
PWD = "e10adc3949ba59abbe56e057f20f883e"  # what an app sends: md5("123456")


def envelope(body: dict[str, object], prefix: str = "Xy7Qa2Z") -> dict[str, str]:
    encoded = base64.b64encode(json.dumps(body).encode()).decode().rstrip("=")
    return {"data_enc": prefix + encoded}


async def register(server: LiveServer, phone: str = PHONE, name: str = "alice") -> None:
    r = await server.post(
        "/lwork/sms/auth_code", {"uuid": phone, "device_id": DEVICE, "type": "register"}
    )
    assert r.json() == {"status": "ok"}, r.text
    code = server.gateway.last_code(phone)
    r = await server.post(
        "/lwork/mobile/register",
        {
            "uuid": phone,
            "device_id": DEVICE,
            "auth_code": code,
            "name": name,
            "pwd": PWD,
            "group_id": "common",
        },
    )
    assert r.json() == {"status": "ok"}, r.text


async def test_full_account_walk(server: LiveServer) -> None:
    # query before anything exists
    r = await server.post("/lwork/mobile/query_status", {"users": [{"acc": "x", "phone": PHONE}]})
    assert r.json()["data"][0]["state"] == "unregistered"

    await register(server)
    sent = server.gateway.received[-1]
    assert sent["to"] == PHONE and server.gateway.headers[-1]["authorization"] == "Bearer gw-secret"

    # login through /lwork/mobile1/ with a data_enc request: the answer is wrapped too
    login = {"acc": PHONE, "pwd": PWD, "device_id": DEVICE, "clidata": {"os_type": "android"}}
    r = await server.post("/lwork/mobile1/login", envelope(login))
    wrapped = r.json()["data_enc"]
    body = json.loads(unwrap_response(wrapped))
    assert body["status"] == "ok"
    assert list(body) == ["status", "uuid", "name", "info", "account", "did", "token"]
    assert (body["uuid"], body["name"], body["info"], body["account"], body["did"]) == (
        PHONE,
        "alice",
        "",
        PHONE,
        "",
    )
    assert len(body["token"]) >= 32

    assert (await server.long_poll(PHONE, DEVICE))["data"] == [{"event": "shake_hand"}]
    r = await server.post(
        "/lwork/mobile/add_info",
        {"uuid": PHONE, "device_id": DEVICE, "info": {"nick": "Al", "avatar": 3}},
    )
    assert r.json() == {"status": "ok"}

    # login again, plain, by username: the info comes back
    r = await server.post("/lwork/mobile/login", {"acc": "alice", "pwd": PWD, "device_id": DEVICE})
    assert r.json()["info"] == {"nick": "Al", "avatar": 3}

    # online means the device long-polls (CONTRACT §4)
    r = await server.post("/channel/push_service", {"acc": PHONE, "device_id": DEVICE})
    assert r.json()["data"] == [{"event": "shake_hand"}]

    r = await server.post(
        "/lwork/mobile/query_status", {"users": [{"acc": "alice", "phone": PHONE}]}
    )
    assert r.json() == {
        "status": "ok",
        "data": [{"acc": "alice", "phone": PHONE, "state": "online"}],
    }

    new_pwd = "c33367701511b4f6020ec61ded352059"
    r = await server.post(
        "/lwork/mobile/modify_pwd",
        {"uuid": PHONE, "device_id": DEVICE, "old_pwd": "wrong", "pwd": new_pwd},
    )
    assert r.json() == {"status": "failed", "reason": "incorrect_old_pwd"}
    r = await server.post(
        "/lwork/mobile/modify_pwd",
        {"uuid": PHONE, "device_id": DEVICE, "old_pwd": PWD, "pwd": new_pwd},
    )
    assert r.json() == {"status": "ok", "name": "alice"}
    r = await server.post("/lwork/mobile/login", {"acc": PHONE, "pwd": PWD, "device_id": DEVICE})
    assert r.json() == {"status": "failed", "reason": "pwd_not_match"}

    # forget_pwd with a fresh code
    r = await server.post(
        "/lwork/sms/auth_code", {"uuid": PHONE, "device_id": DEVICE, "type": "resetpwd"}
    )
    assert r.json() == {"status": "ok"}
    code = server.gateway.last_code(PHONE)
    reset_pwd = "0192023a7bbd73250516f069df18b500"
    r = await server.post(
        "/lwork/mobile/forget_pwd",
        {
            "uuid": PHONE,
            "device_id": DEVICE,
            "auth_code": code,
            "pwd": reset_pwd,
            "group_id": "common",
        },
    )
    assert r.json() == {"status": "ok", "name": "alice"}
    # the code was used once
    r = await server.post(
        "/lwork/mobile/forget_pwd",
        {"uuid": PHONE, "device_id": DEVICE, "auth_code": code, "pwd": PWD, "type": "sms"},
    )
    assert r.json() == {"status": "failed", "reason": "invalid_auth_code"}

    r = await server.post(
        "/lwork/mobile/login", {"acc": PHONE, "pwd": reset_pwd, "device_id": DEVICE}
    )
    assert r.json()["status"] == "ok"
    r = await server.post("/lwork/mobile/logout", {"uuid": PHONE, "device_id": DEVICE})
    assert r.json() == {"status": "ok"}
    r = await server.post(
        "/lwork/mobile/query_status",
        {"users": [{"acc": "a", "phone": PHONE}, {"acc": "b", "phone": "13911112222"}]},
    )
    assert [u["state"] for u in r.json()["data"]] == ["offline", "unregistered"]


async def test_login_on_another_device_ends_the_first_session(server: LiveServer) -> None:
    await register(server)
    first = await server.post("/lwork/mobile/login", {"acc": PHONE, "pwd": PWD, "device_id": "A"})
    token_a = first.json()["token"]
    r = await server.post("/lwork/mobile/login", {"acc": PHONE, "pwd": PWD, "device_id": "B"})
    assert r.json()["status"] == "ok"
    # device A's token and device id no longer act for the account
    r = await server.post(
        "/lwork/mobile/add_info",
        {"uuid": PHONE, "device_id": "A", "info": 1},
        headers={"Authorization": f"Bearer {token_a}"},
    )
    assert r.json() == {"status": "failed", "reason": "no_logined"}
    r = await server.post("/lwork/mobile/add_info", {"uuid": PHONE, "device_id": "A", "info": 1})
    assert r.json() == {"status": "failed", "reason": "no_logined"}
    await server.long_poll(PHONE, "B")
    r = await server.post("/lwork/mobile/add_info", {"uuid": PHONE, "device_id": "B", "info": 2})
    assert r.json() == {"status": "ok"}


async def test_register_failures(server: LiveServer) -> None:
    await register(server)
    r = await server.post(
        "/lwork/sms/auth_code", {"uuid": PHONE, "device_id": DEVICE, "type": "register"}
    )
    assert r.json() == {"status": "failed", "reason": "account_already_exist"}
    r = await server.post(
        "/lwork/sms/auth_code", {"uuid": "13700000000", "device_id": DEVICE, "type": "resetpwd"}
    )
    assert r.json() == {"status": "failed", "reason": "account_not_exist"}
    # wrong code, then a taken username
    other = "13700000000"
    await server.post("/lwork/sms/auth_code", {"uuid": other, "type": "register"})
    good = server.gateway.last_code(other)
    bad = f"{(int(good) + 1) % 1_000_000:06d}"
    base = {"uuid": other, "device_id": "d", "pwd": PWD, "group_id": "common"}
    r = await server.post("/lwork/mobile/register", {**base, "auth_code": bad, "name": "bob"})
    assert r.json() == {"status": "failed", "reason": "invalid_auth_code"}
    r = await server.post("/lwork/mobile/register", {**base, "auth_code": good, "name": "alice"})
    assert r.json() == {"status": "failed", "reason": "username_already_existed"}
    r = await server.post("/lwork/mobile/register", {**base, "auth_code": good, "name": "bob"})
    assert r.json() == {"status": "ok"}
    # "0086" prefixed form is the same account
    r = await server.post(
        "/lwork/mobile/login", {"acc": "0086" + other, "pwd": PWD, "device_id": "d"}
    )
    assert r.json()["status"] == "ok" and r.json()["uuid"] == other
    r = await server.post("/lwork/mobile/login", {"acc": "nobody", "pwd": PWD, "device_id": "d"})
    assert r.json() == {"status": "failed", "reason": "account_not_existed"}


async def test_wrong_code_five_times_burns_it(server: LiveServer) -> None:
    phone = "13600000000"
    await server.post("/lwork/sms/auth_code", {"uuid": phone, "type": "register"})
    good = server.gateway.last_code(phone)
    bad = f"{(int(good) + 7) % 1_000_000:06d}"
    body = {"uuid": phone, "device_id": "d", "pwd": PWD, "group_id": "common"}
    for _ in range(5):
        r = await server.post("/lwork/mobile/register", {**body, "auth_code": bad})
        assert r.json()["reason"] == "invalid_auth_code"
    r = await server.post("/lwork/mobile/register", {**body, "auth_code": good})
    assert r.json() == {"status": "failed", "reason": "invalid_auth_code"}


async def test_sms_gateway_failure_is_reported(server: LiveServer) -> None:
    server.gateway.answer = {"result": "9", "error": "no credit"}
    r = await server.post("/lwork/sms/auth_code", {"uuid": "13500000000", "type": "register"})
    assert r.json() == {"status": "failed", "reason": "sms_failed"}
    server.gateway.status_code = 503
    r = await server.post("/lwork/sms/auth_code", {"uuid": "13500000001", "type": "register"})
    assert r.json() == {"status": "failed", "reason": "sms_failed"}


async def test_codes_are_not_stored_in_clear(server: LiveServer) -> None:
    from sqlalchemy import select

    from lwork.storage.tables import accounts, sms_codes

    await register(server)
    code = server.gateway.last_code(PHONE)
    async with server.services.engine.connect() as conn:
        stored = (await conn.execute(select(sms_codes.c.code_hash))).scalars().all()
        pwd_hash = (await conn.execute(select(accounts.c.pwd_hash))).scalar_one()
    assert stored and all(code not in value for value in stored)
    assert pwd_hash.startswith("$argon2id$") and PWD not in pwd_hash
