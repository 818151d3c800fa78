"""Bad input gets the contract's error, never a 500 (CONTRACT §1)."""

from __future__ import annotations

import httpx
import pytest

from conftest import LiveServer

POST_ROUTES = [
    "/lwork/sms/auth_code",
    "/lwork/mobile/register",
    "/lwork/mobile/login",
    "/lwork/mobile/logout",
    "/lwork/mobile/forget_pwd",
    "/lwork/mobile/modify_pwd",
    "/lwork/mobile/add_info",
    "/lwork/mobile/query_status",
    "/lwork/mobile/baidu_push_register",
]


def assert_invalid(response: httpx.Response, field: str | None = None) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == "failed" and body["reason"] == "invalid_params"
    if field is not None:
        assert body["field"] == field, body


@pytest.mark.parametrize("path", POST_ROUTES)
async def test_non_object_bodies(server: LiveServer, path: str) -> None:
    for raw in (b"[1,2]", b'"text"', b"42", b"{not json", b"\xff\xfe"):
        r = await server.client.post(server.url + path, content=raw)
        assert_invalid(r)
    r = await server.client.post(server.url + path, content=b"")
    assert_invalid(r)  # an empty body misses required fields


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/lwork/sms/auth_code", {"uuid": "138"}, "type"),
        ("/lwork/sms/auth_code", {"uuid": "138", "type": "hack"}, "type"),
        ("/lwork/sms/auth_code", {"uuid": "abc", "type": "register"}, "uuid"),
        ("/lwork/mobile/register", {"uuid": "1", "device_id": "d", "auth_code": "1"}, "pwd"),
        (
            "/lwork/mobile/register",
            {"uuid": "1", "device_id": "d", "auth_code": "1", "pwd": "p"},
            "group_id",
        ),
        ("/lwork/mobile/login", {"acc": "1", "device_id": "d"}, "pwd"),
        ("/lwork/mobile/login", {"acc": "1", "pwd": True, "device_id": "d"}, "pwd"),
        ("/lwork/mobile/login", {"acc": "1", "pwd": "p", "device_id": "d" * 500}, "device_id"),
        ("/lwork/mobile/login", {"pwd": "p", "device_id": "d"}, "acc"),
        (
            "/lwork/mobile/login",
            {"acc": "1", "pwd": "p", "device_id": "d", "clidata": {"os_type": 5}},
            "clidata.os_type",
        ),
        ("/lwork/mobile/query_status", {"users": "x"}, "users"),
        ("/lwork/mobile/query_status", {"users": [{"acc": 1.5}]}, "users[0].acc"),
        ("/lwork/mobile/query_status", {"users": [{}] * 501}, "users"),
        ("/lwork/mobile/add_info", {"uuid": "1", "device_id": "d"}, "info"),
        ("/lwork/mobile/baidu_push_register", {"account": "1"}, "channel_id"),
    ],
)
async def test_missing_wrong_and_oversize_fields(
    server: LiveServer, path: str, body: dict[str, object], field: str
) -> None:
    assert_invalid(await server.post(path, body), field)


async def test_numbers_are_accepted_for_string_fields(server: LiveServer) -> None:
    r = await server.post("/lwork/mobile/login", {"acc": 13800138000, "pwd": "p", "device_id": 7})
    assert r.json() == {"status": "failed", "reason": "account_not_existed"}


async def test_broken_data_enc(server: LiveServer) -> None:
    assert_invalid(
        await server.post("/lwork/mobile/login", {"data_enc": "1234567%%%%"}), "data_enc"
    )
    import base64

    not_json = "1234567" + base64.b64encode(b"not json").decode()
    assert_invalid(await server.post("/lwork/mobile/login", {"data_enc": not_json}), "data_enc")


async def test_unknown_paths_and_wrong_methods(server: LiveServer) -> None:
    r = await server.post("/lwork/mobile/nothing", {})
    assert r.status_code == 404 and r.json() == {"status": "failed", "reason": "not_found"}
    r = await server.get("/etc/passwd")
    assert r.status_code == 404
    r = await server.get("/lwork/mobile/login")
    assert r.status_code == 405
    assert r.json() == {"status": "failed", "reason": "method_not_allowed"}
    assert r.headers["allow"] == "POST"
    r = await server.client.delete(server.url + "/lwork/mobile/version_no")
    assert r.status_code == 405


async def test_paths_are_normalised(server: LiveServer) -> None:
    r = await server.post("//lwork//mobile/login/", {"acc": "1", "pwd": "p", "device_id": "d"})
    assert r.json() == {"status": "failed", "reason": "account_not_existed"}


async def test_oversize_body_is_413(server: LiveServer) -> None:
    big = {"uuid": "1", "device_id": "d", "info": "x" * (70 * 1024)}
    r = await server.post("/lwork/mobile/add_info", big)
    assert r.status_code == 413
    assert r.json() == {"status": "failed", "reason": "payload_too_large"}

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(80):
            yield b"x" * 1024

    r = await server.client.post(server.url + "/lwork/mobile/add_info", content=chunks())
    assert r.status_code == 413


async def test_wrapped_errors_are_wrapped(server: LiveServer) -> None:
    from lwork.http.envelope import unwrap_response

    r = await server.post("/lwork/mobile1/login", {"acc": "1"})
    assert r.status_code == 400
    assert b'"field":"pwd"' in unwrap_response(r.json()["data_enc"])
