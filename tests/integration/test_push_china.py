"""The Chinese phone makers' push services against HTTPS fakes written from their
documentation: a server that cannot show a certificate from a trusted CA is never sent a
message, a call push goes out at the priority the vendor allows for VoIP, an access token expiring
mid-send is renewed, a dead device token is reported as data, throttling / quota / busy /
malformed answers are retried within bounds, a hanging vendor is cut off, wrong credentials
are a permanent failure; and through the whole server, an incoming call invitation reaches a
device registered with each vendor and a dead registration is forgotten."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from lwork.outbound_tls import outbound_tls
from lwork.push.providers import GuardedProvider, PushMessage, PushProvider, PushTarget, RetryPolicy
from lwork.push.providers.honor import HonorProvider
from lwork.push.providers.huawei import HuaweiProvider
from lwork.push.providers.jpush import JPushProvider
from lwork.push.providers.oppo import OppoProvider
from lwork.push.providers.vivo import VivoProvider
from lwork.push.providers.xiaomi import XiaomiProvider
from lwork.settings.push import (
    HonorSettings,
    HuaweiSettings,
    JPushSettings,
    OppoSettings,
    VivoSettings,
    XiaomiSettings,
)

from conftest import LiveServer
from fakes.push_honor import APP_ID as HONOR_APP_ID
from fakes.push_honor import CLIENT_ID as HONOR_CLIENT_ID
from fakes.push_honor import CLIENT_SECRET as HONOR_SECRET
from fakes.push_honor import HonorPushFake
from fakes.push_huawei import APP_ID as HUAWEI_APP_ID
from fakes.push_huawei import APP_SECRET as HUAWEI_SECRET
from fakes.push_huawei import HuaweiPushFake
from fakes.push_jpush import APP_KEY as JPUSH_KEY
from fakes.push_jpush import MASTER_SECRET as JPUSH_SECRET
from fakes.push_jpush import JPushFake
from fakes.push_oppo import APP_KEY as OPPO_KEY
from fakes.push_oppo import MASTER_SECRET as OPPO_SECRET
from fakes.push_oppo import OppoPushFake
from fakes.push_vendor import VendorPushFake
from fakes.push_vivo import APP_ID as VIVO_ID
from fakes.push_vivo import APP_KEY as VIVO_KEY
from fakes.push_vivo import APP_SECRET as VIVO_SECRET
from fakes.push_vivo import VivoPushFake
from fakes.push_xiaomi import APP_SECRET as XIAOMI_SECRET
from fakes.push_xiaomi import PACKAGE as XIAOMI_PACKAGE
from fakes.push_xiaomi import XiaomiPushFake
from fakes.tls import lwork_ca, rogue_ca

CALL = PushMessage(
    "p2p_inform_called",
    {"event": "p2p_inform_called", "caller": "13900000000", "opdata": {"s": "n1@@x"}},
    kind="call",
)
ACCOUNT = PushMessage("login_otherwhere", {"event": "login_otherwhere"}, kind="account")
DEVICE_TOKEN = "device-token-1"


@dataclass
class Vendor:
    name: str
    fake: Callable[[], VendorPushFake]
    build: Callable[[VendorPushFake, httpx.AsyncClient, str, float], PushProvider]
    """(fake, client, secret, timeout) -> the provider under test."""
    secret: str
    access_tokens: bool = True
    """The vendor issues access tokens (else every request carries the app secret)."""
    quota_is_final: bool = False
    """The vendor asks not to be called again the day its quota is used up (vivo)."""


def _huawei(
    fake: VendorPushFake, client: httpx.AsyncClient, secret: str, timeout: float
) -> PushProvider:
    token_url = fake.base_url + "/oauth2/v3/token"
    config = HuaweiSettings(enabled=True, app_id=HUAWEI_APP_ID, app_secret=secret,
                            timeout_s=timeout, token_url=token_url,
                            base_url=fake.base_url)  # fmt: skip
    return HuaweiProvider(config, client)


def _xiaomi(
    fake: VendorPushFake, client: httpx.AsyncClient, secret: str, timeout: float
) -> PushProvider:
    config = XiaomiSettings(enabled=True, app_secret=secret, package_name=XIAOMI_PACKAGE,
                            base_url=fake.base_url, timeout_s=timeout)  # fmt: skip
    return XiaomiProvider(config, client)


def _oppo(
    fake: VendorPushFake, client: httpx.AsyncClient, secret: str, timeout: float
) -> PushProvider:
    config = OppoSettings(enabled=True, app_key=OPPO_KEY, master_secret=secret,
                          base_url=fake.base_url, timeout_s=timeout)  # fmt: skip
    return OppoProvider(config, client)


def _vivo(
    fake: VendorPushFake, client: httpx.AsyncClient, secret: str, timeout: float
) -> PushProvider:
    config = VivoSettings(enabled=True, app_id=VIVO_ID, app_key=VIVO_KEY, app_secret=secret,
                          base_url=fake.base_url, timeout_s=timeout)  # fmt: skip
    return VivoProvider(config, client)


def _honor(
    fake: VendorPushFake, client: httpx.AsyncClient, secret: str, timeout: float
) -> PushProvider:
    config = HonorSettings(enabled=True, app_id=HONOR_APP_ID, client_id=HONOR_CLIENT_ID,
                           client_secret=secret, token_url=fake.base_url + "/auth/token",
                           base_url=fake.base_url, timeout_s=timeout)  # fmt: skip
    return HonorProvider(config, client)


def _jpush(
    fake: VendorPushFake, client: httpx.AsyncClient, secret: str, timeout: float
) -> PushProvider:
    config = JPushSettings(enabled=True, app_key=JPUSH_KEY, master_secret=secret,
                           base_url=fake.base_url, timeout_s=timeout)  # fmt: skip
    return JPushProvider(config, client)


VENDORS = [
    Vendor("huawei", HuaweiPushFake, _huawei, HUAWEI_SECRET),
    Vendor("xiaomi", XiaomiPushFake, _xiaomi, XIAOMI_SECRET, access_tokens=False),
    Vendor("oppo", OppoPushFake, _oppo, OPPO_SECRET),
    Vendor("vivo", VivoPushFake, _vivo, VIVO_SECRET, quota_is_final=True),
    Vendor("honor", HonorPushFake, _honor, HONOR_SECRET),
    Vendor("jpush", JPushFake, _jpush, JPUSH_SECRET, access_tokens=False),
]


async def no_sleep(delay: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture(params=VENDORS, ids=lambda v: v.name)
async def vendor(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Vendor, VendorPushFake]]:
    spec: Vendor = request.param
    async with spec.fake().running() as fake:
        yield spec, fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The providers' client, trusting the test run's CA as ``outbound_ca_file`` makes it."""
    async with httpx.AsyncClient(verify=outbound_tls(lwork_ca().ca_file)) as http:
        yield http


def guarded(vendor: tuple[Vendor, VendorPushFake], client: httpx.AsyncClient, *,
            secret: str | None = None, timeout_s: float = 5.0,
            attempt_timeout_s: float = 20.0, attempts: int = 3) -> GuardedProvider:  # fmt: skip
    spec, fake = vendor
    inner = spec.build(fake, client, spec.secret if secret is None else secret, timeout_s)
    policy = RetryPolicy(max_attempts=attempts, base_delay_s=0.01, max_delay_s=0.05,
                         attempt_timeout_s=attempt_timeout_s)  # fmt: skip
    return GuardedProvider(inner, policy=policy, sleep=no_sleep)


TARGET = PushTarget("vendor", DEVICE_TOKEN, platform="android")


def trusting() -> dict[str, Any]:
    """The server setting that makes lwork trust the fakes' CA."""
    return {"outbound_ca_file": lwork_ca().ca_file}


async def test_a_server_showing_a_certificate_from_another_ca_is_never_sent_anything(
    vendor: tuple[Vendor, VendorPushFake], client: httpx.AsyncClient
) -> None:
    # The attack: something on the path answers for the vendor's address with a certificate
    # that a CA of its own issued. The provider must not send it the app secret, the access
    # token request or the call.
    spec, _ = vendor
    async with spec.fake().running(rogue_ca()) as impostor:
        result = await guarded((spec, impostor), client, attempts=2).send(CALL, TARGET)
    assert not result.delivered and result.rejected_tokens == ()
    assert "CERTIFICATE_VERIFY_FAILED" in (result.failure or ""), result.failure
    assert impostor.token_requests == 0 and impostor.send_requests == 0
    assert impostor.delivered == []


async def test_a_call_goes_out_as_the_vendors_voip_priority(
    vendor: tuple[Vendor, VendorPushFake], client: httpx.AsyncClient
) -> None:
    spec, fake = vendor
    result = await guarded(vendor, client).send(CALL, TARGET)
    assert result.delivered and result.attempts == 1, result
    assert fake.problems == []
    [delivery] = fake.delivered
    assert delivery.token == DEVICE_TOKEN
    assert delivery.event["event"] == "p2p_inform_called"
    assert delivery.event["payload"]["opdata"] == {"s": "n1@@x"}
    assert delivery.call_priority


async def test_the_access_token_is_reused_then_renewed_when_it_expires_mid_send(
    vendor: tuple[Vendor, VendorPushFake], client: httpx.AsyncClient
) -> None:
    spec, fake = vendor
    if not spec.access_tokens:
        pytest.skip(f"{spec.name} authenticates every request with the app secret")
    provider = guarded(vendor, client)
    assert (await provider.send(ACCOUNT, TARGET)).delivered
    assert (await provider.send(ACCOUNT, TARGET)).delivered
    assert fake.token_requests == 1
    fetched = fake.token_requests
    fake.fail_next = ["expire_token"]
    result = await provider.send(CALL, TARGET)
    assert result.delivered, result
    assert fake.token_requests == fetched + 1
    assert len(fake.delivered) == 3


async def test_a_dead_device_token_is_reported_without_retry(
    vendor: tuple[Vendor, VendorPushFake], client: httpx.AsyncClient
) -> None:
    spec, fake = vendor
    result = await guarded(vendor, client).send(CALL, PushTarget("v", "uninstalled-token"))
    assert not result.delivered and result.rejected_tokens == ("uninstalled-token",)
    assert result.attempts == 1
    fake.fail_next = ["dead_token"]
    result = await guarded(vendor, client).send(CALL, TARGET)
    assert result.rejected_tokens == (DEVICE_TOKEN,) and result.attempts == 1


@pytest.mark.parametrize("failure", ["throttled", "quota", "busy", "malformed"])
async def test_temporary_failures_are_retried_then_delivered(
    vendor: tuple[Vendor, VendorPushFake], client: httpx.AsyncClient, failure: str
) -> None:
    spec, fake = vendor
    if failure == "quota" and spec.quota_is_final:
        pytest.skip(f"{spec.name} asks not to be called again the day its quota is used up")
    fake.fail_next = [failure]
    result = await guarded(vendor, client).send(CALL, TARGET)
    assert result.delivered and result.attempts == 2, result
    fake.fail_next = [failure] * 5
    result = await guarded(vendor, client, attempts=3).send(CALL, TARGET)
    assert not result.delivered and result.attempts == 3 and result.rejected_tokens == ()


async def test_vivo_is_not_asked_again_once_its_daily_quota_is_used_up() -> None:
    # vivo's server API document: after 10070 ("send total exceeded"), do not call
    # /message/send again that day, or the app's quota is lowered.
    spec = next(v for v in VENDORS if v.name == "vivo")
    trusting = outbound_tls(lwork_ca().ca_file)
    # The client closes before the fake stops: a server does not stop under an open connection.
    async with spec.fake().running() as fake, httpx.AsyncClient(verify=trusting) as client:
        fake.fail_next = ["quota"]
        result = await guarded((spec, fake), client, attempts=3).send(CALL, TARGET)
        assert not result.delivered and result.attempts == 1 and result.rejected_tokens == ()
        assert "10070" in (result.failure or "")
        assert fake.send_requests == 1 and fake.delivered == []


async def test_a_hanging_vendor_is_cut_off_within_bounds(
    vendor: tuple[Vendor, VendorPushFake], client: httpx.AsyncClient
) -> None:
    spec, fake = vendor
    provider = guarded(vendor, client)
    assert (await provider.send(ACCOUNT, TARGET)).delivered  # the access token is held
    fake.hang = True
    hanging = guarded(vendor, client, timeout_s=0.3, attempts=2)
    started = time.monotonic()
    result = await hanging.send(CALL, TARGET)
    assert not result.delivered and result.attempts == 2
    assert time.monotonic() - started < 2.0


async def test_wrong_credentials_are_a_permanent_failure(
    vendor: tuple[Vendor, VendorPushFake], client: httpx.AsyncClient
) -> None:
    spec, fake = vendor
    result = await guarded(vendor, client, secret="not-the-secret").send(CALL, TARGET)
    assert not result.delivered and result.attempts == 1 and result.rejected_tokens == ()
    assert fake.delivered == []
    assert "not-the-secret" not in (result.failure or "")


# -- through the whole server ----------------------------------------------------------------

PWD = "e10adc3949ba59abbe56e057f20f883e"
PHONE = "13800138000"


async def sleeping_device(server: LiveServer, provider: str, token: str) -> None:
    """Register, log in, register the vendor token while polling, then stop polling."""
    await server.post("/lwork/sms/auth_code", {"uuid": PHONE, "type": "register"})
    body = {"uuid": PHONE, "device_id": "A", "auth_code": server.gateway.last_code(PHONE),
            "pwd": PWD, "group_id": "common"}  # fmt: skip
    assert (await server.post("/lwork/mobile/register", body)).json() == {"status": "ok"}
    r = await server.post("/lwork/mobile/login", {"acc": PHONE, "pwd": PWD, "device_id": "A"})
    assert r.json()["status"] == "ok"
    async with server.polling(PHONE, "A"):
        r = await server.post("/lwork/mobile/baidu_push_register",
                              {"account": PHONE, "user_id": "u", "channel_id": token,
                               "provider": provider})  # fmt: skip
    assert r.json() == {"status": "ok"}, r.text


async def wait_for(predicate: Callable[[], Any], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_an_incoming_call_reaches_a_device_registered_with_the_vendor(
    vendor: tuple[Vendor, VendorPushFake], server_factory: Callable[..., Any]
) -> None:
    spec, fake = vendor
    push = {"hold_s": 30, spec.name: fake.settings()}  # type: ignore[attr-defined]
    async with server_factory(push=push, **trusting()) as server:
        await sleeping_device(server, spec.name, DEVICE_TOKEN)
        invite = {"event": "p2p_inform_called", "caller": "13900000000",
                  "opdata": {"s": "n1@@x"}}  # fmt: skip
        await server.services.push.notify(PHONE, invite, call_id="n1@@x")
        await wait_for(lambda: fake.delivered)
        [delivery] = fake.delivered
        assert delivery.token == DEVICE_TOKEN and delivery.call_priority
        assert delivery.event["payload"] == invite


async def test_the_server_trusts_the_system_store_unless_outbound_ca_file_says_otherwise(
    server_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "lwork.push")
    retry = {"max_attempts": 1, "attempt_timeout_s": 2.0}
    async with HuaweiPushFake().running() as fake:
        push = {"hold_s": 30, "retry": retry, "huawei": fake.settings()}  # type: ignore[attr-defined]
        invite = {"event": "p2p_inform_called", "caller": "13900000000", "opdata": {"s": "a"}}
        async with server_factory(push=push) as server:  # no outbound_ca_file: system store
            await sleeping_device(server, "huawei", DEVICE_TOKEN)
            await server.services.push.notify(PHONE, invite, call_id="n1@@a")
            await wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in caplog.text)
        assert fake.token_requests == 0 and fake.delivered == []


async def test_a_registration_the_vendor_reports_dead_is_forgotten(
    vendor: tuple[Vendor, VendorPushFake], server_factory: Callable[..., Any]
) -> None:
    spec, fake = vendor
    async with server_factory(push={spec.name: fake.settings()}, **trusting()) as server:  # type: ignore[attr-defined]
        await sleeping_device(server, spec.name, "uninstalled-token")
        store = server.services.account_store
        assert await store.push_registrations(PHONE, "A") == {spec.name: "uninstalled-token"}
        await server.services.push.notify(PHONE, {"event": "x"})
        with contextlib.suppress(TimeoutError):
            await wait_for(lambda: False, 0.1)
        for _ in range(250):
            if not await store.push_registrations(PHONE, "A"):
                break
            await asyncio.sleep(0.02)
        assert await store.push_registrations(PHONE, "A") == {}


async def test_a_hanging_vendor_holds_up_nothing_and_no_secret_is_logged(
    vendor: tuple[Vendor, VendorPushFake],
    server_factory: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec, fake = vendor
    caplog.set_level(logging.DEBUG)
    retry = {"max_attempts": 2, "attempt_timeout_s": 0.3, "base_delay_s": 0.01}
    push = {"retry": retry, spec.name: fake.settings(timeout_s=0.2)}  # type: ignore[attr-defined]
    async with server_factory(push=push, **trusting()) as server:
        await sleeping_device(server, spec.name, DEVICE_TOKEN)
        fake.hang = True
        started = time.monotonic()
        invite = {"event": "p2p_inform_called", "caller": "13900000000"}
        await server.services.push.notify(PHONE, invite, call_id="n2@@x")
        # The push goes out in the background: the caller's request does not wait for it ...
        assert time.monotonic() - started < 0.5
        r = await server.post("/lwork/mobile/login", {"acc": PHONE, "pwd": PWD, "device_id": "A"})
        assert r.json()["status"] == "ok"
        assert time.monotonic() - started < 1.0
        # ... and the vendor is asked at most max_attempts times, then given up on.
        await wait_for(lambda: fake.send_requests >= 2)
        await asyncio.sleep(0.5)
        assert fake.send_requests == 2
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert spec.secret not in logged
