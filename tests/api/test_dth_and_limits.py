"""dth registration against provisioning, app versions, rate limits, the catch-all."""

from __future__ import annotations

import time

from starlette.applications import Starlette

from lwork.accounts.provisioning import ProvisioningService

from conftest import LiveServer

PWD = "e10adc3949ba59abbe56e057f20f883e"


async def provision(server: LiveServer, account: str, password: str) -> ProvisioningService:
    service = ProvisioningService(server.services.account_store, server.services.passwords)
    await service.open(account, password, "dth", time.time())
    return service


async def test_dth_register_login_and_reset(server: LiveServer) -> None:
    sdn = "02150001234"
    base = {"uuid": sdn, "device_id": "d", "pwd": PWD, "group_id": "dth", "name": "dora"}
    r = await server.post("/lwork/mobile/register", {**base, "auth_code": "boss-pw"})
    assert r.json() == {"status": "failed", "reason": "not_provisioned"}

    provisioning = await provision(server, sdn, "boss-pw")
    await provisioning.bind(sdn, "13911112222")
    r = await server.post("/lwork/mobile/register", {**base, "auth_code": "wrong"})
    assert r.json() == {"status": "failed", "reason": "invalid_auth_code"}
    r = await server.post(
        "/lwork/mobile/register", {**base, "type": "delegate", "auth_code": "boss-pw"}
    )
    assert r.json() == {"status": "ok"}
    r = await server.post("/lwork/mobile/register", {**base, "auth_code": "boss-pw"})
    assert r.json() == {"status": "failed", "reason": "uuid_already_registered"}

    r = await server.post("/lwork/mobile/login", {"acc": sdn, "pwd": PWD, "device_id": "d"})
    body = r.json()
    assert (body["status"], body["did"], body["name"]) == ("ok", "13911112222", "dora")

    # a deactivated account can still log in (its calls will fail not_actived)
    await provisioning.set_active(sdn, False)
    r = await server.post("/lwork/mobile/login", {"acc": sdn, "pwd": PWD, "device_id": "d"})
    assert r.json()["status"] == "ok"
    await server.long_poll(sdn, "d")
    r = await server.post("/lwork/mobile/add_info", {"uuid": sdn, "device_id": "d", "info": 1})
    assert r.json() == {"status": "ok"}

    reset = {"uuid": sdn, "auth_code": "boss-pw", "pwd": "new", "group_id": "dth"}
    r = await server.post("/lwork/mobile/forget_pwd", {**reset, "name": "someone"})
    assert r.json() == {"status": "failed", "reason": "username_not_match"}
    r = await server.post("/lwork/mobile/forget_pwd", {**reset, "name": "dora"})
    assert r.json() == {"status": "ok", "name": "dora"}
    # the reset ended the live session
    r = await server.post("/lwork/mobile/add_info", {"uuid": sdn, "device_id": "d", "info": 1})
    assert r.json() == {"status": "failed", "reason": "no_logined"}


async def test_common_registration_cannot_take_a_provisioned_number(server: LiveServer) -> None:
    await provision(server, "13712345678", "x")
    await server.post("/lwork/sms/auth_code", {"uuid": "13712345678", "type": "register"})
    code = server.gateway.last_code("13712345678")
    r = await server.post(
        "/lwork/mobile/register",
        {
            "uuid": "13712345678",
            "device_id": "d",
            "auth_code": code,
            "pwd": PWD,
            "group_id": "common",
        },
    )
    assert r.json() == {
        "status": "failed",
        "reason": "account_already_exist",
        "other": "did_no_conflict",
    }


async def test_versions(server: LiveServer) -> None:
    from lwork.appversions import VersionResponse

    r = await server.get("/lwork/mobile/version_common_no")
    assert r.json() == {"status": "failed"}
    version = VersionResponse(
        i_version_no="2.0", i_version_path="https://x/i.plist", i_version_info="iOS",
        version_no="1.9", version_path="https://x/a.apk", version_info="Android\nnotes",
    )  # fmt: skip
    await server.services.versions.set("common", version)
    for path in ("version_common_no", "version_commont_no"):
        r = await server.get("/lwork/mobile/" + path)
        assert list(r.json()) == [
            "status", "i_version_no", "i_version_path", "i_version_info",
            "version_no", "version_path", "version_info",
        ]  # fmt: skip
        assert r.json()["version_info"] == "Android\nnotes"
    assert (await server.get("/lwork/mobile/version_dth_no")).json() == {"status": "failed"}


async def test_sms_resend_interval_answers_429(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(sms={"resend_interval_s": 60}) as server:
        body = {"uuid": "13800000001", "type": "register"}
        assert (await server.post("/lwork/sms/auth_code", body)).json() == {"status": "ok"}
        r = await server.post("/lwork/sms/auth_code", body)
        assert r.status_code == 429
        assert r.json() == {"status": "failed", "reason": "too_many_requests"}
        assert 50 <= int(r.headers["retry-after"]) <= 60
        assert len(server.gateway.received) == 1


async def test_sms_daily_cap_and_ip_cap(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(sms={"per_number_per_day": 2, "per_ip_per_hour": 3}) as server:
        statuses = [
            (
                await server.post(
                    "/lwork/sms/auth_code", {"uuid": "13800000002", "type": "register"}
                )
            ).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        r = await server.post("/lwork/sms/auth_code", {"uuid": "13800000003", "type": "register"})
        assert r.status_code == 200  # third send from this IP
        r = await server.post("/lwork/sms/auth_code", {"uuid": "13800000004", "type": "register"})
        assert r.status_code == 429


async def test_login_attempts_per_ip_are_limited(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(auth={"login_per_minute_per_ip": 3}) as server:
        body = {"acc": "1", "pwd": "p", "device_id": "d"}
        codes = [(await server.post("/lwork/mobile/login", body)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        # other endpoints are not charged against the login budget
        assert (await server.get("/lwork/mobile/version_no")).status_code == 200


async def test_failed_passwords_per_account_are_limited(server_factory) -> None:  # type: ignore[no-untyped-def]
    async with server_factory(auth={"login_per_hour_per_account": 2}) as server:
        await server.post("/lwork/sms/auth_code", {"uuid": "13800000005", "type": "register"})
        code = server.gateway.last_code("13800000005")
        await server.post(
            "/lwork/mobile/register",
            {
                "uuid": "13800000005",
                "device_id": "d",
                "auth_code": code,
                "pwd": PWD,
                "group_id": "common",
            },
        )
        bad = {"acc": "13800000005", "pwd": "bad", "device_id": "d"}
        reasons = [
            (await server.post("/lwork/mobile/login", bad)).json()["reason"] for _ in range(3)
        ]
        assert reasons == ["pwd_not_match", "pwd_not_match", "too_many_requests"]
        good = {**bad, "pwd": PWD}
        assert (await server.post("/lwork/mobile/login", good)).status_code == 429


async def test_unexpected_errors_answer_service_not_available() -> None:
    """A handler bug is answered 200 service_not_available, logged, never a 500."""
    import httpx

    from lwork.http.request import ApiRequest
    from lwork.http.routing import Reply, Route, RouteTable
    from lwork.http.server import HttpEdge, build_starlette
    from lwork.ratelimit import RateLimiter

    from fakes.servers import serve_asgi

    async def broken(req: ApiRequest) -> Reply:
        raise RuntimeError("bug")

    edge = HttpEdge(
        RouteTable([Route("POST", "/lwork/mobile/broken", broken)]),
        body_limit=1024, ip_limiter=RateLimiter(100, 60), login_limiter=RateLimiter(100, 60),
        trusted_proxies=[], monotonic=time.monotonic,
    )  # fmt: skip
    app: Starlette = build_starlette(edge)
    async with serve_asgi(app) as url, httpx.AsyncClient() as client:
        r = await client.post(url + "/lwork/mobile/broken", json={})
    assert r.status_code == 200
    assert r.json() == {"status": "failed", "reason": "service_not_available"}
    assert len(r.headers["x-request-id"]) == 16


async def test_health_readiness_openapi(server: LiveServer) -> None:
    assert (await server.get("/healthz")).json() == {"status": "ok"}
    assert (await server.get("/readyz")).json() == {"status": "ok"}
    doc = (await server.get("/openapi.json")).json()
    login = doc["paths"]["/lwork/mobile/login"]["post"]
    ref = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"pwd", "device_id"}


async def test_query_status_of_a_bound_did_reports_its_account(server: LiveServer) -> None:
    sdn, did = "02150004321", "13911113333"
    provisioning = await provision(server, sdn, "boss-pw")
    await provisioning.bind(sdn, did)  # what `lwork boss bind` does
    base = {"uuid": sdn, "device_id": "d", "pwd": PWD, "group_id": "dth", "auth_code": "boss-pw"}
    assert (await server.post("/lwork/mobile/register", base)).json() == {"status": "ok"}
    login = {"acc": sdn, "pwd": PWD, "device_id": "d"}
    assert (await server.post("/lwork/mobile/login", login)).json()["status"] == "ok"
    users = [
        {"acc": "by did", "phone": did},
        {"acc": "by sdn", "phone": sdn},
        {"acc": "", "phone": "0086" + did},
        {"acc": "nobody", "phone": "13700000000"},
    ]

    async def states() -> list[str]:
        r = await server.post("/lwork/mobile/query_status", {"users": users})
        return [user["state"] for user in r.json()["data"]]

    assert await states() == ["offline", "offline", "offline", "unregistered"]
    poll = {"acc": sdn, "device_id": "d", "self_phone": sdn}
    await server.post("/channel/push_service", poll)
    assert await states() == ["online", "online", "online", "unregistered"]
