"""Verification codes through the Aliyun and Tencent SMS fakes, over real HTTPS (a CA made for
the test run, trusted through ``outbound_ca_file``): each delivers, a server with a certificate
from any other CA is never sent the signed request,
a temporary failure fails over to the other, a refused number does not, a hanging vendor is cut
off by its timeout, and neither the code nor a secret reaches the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fakes.sms_aliyun import KEY_SECRET, AliyunSmsFake
from fakes.sms_tencent import SECRET_KEY, TencentSmsFake
from fakes.tls import FakeCa, lwork_ca, rogue_ca, serve_asgi_tls

PHONE = "13800138000"
DEVICE = "device-A"
PWD = "e10adc3949ba59abbe56e057f20f883e"


@pytest.fixture
def server_factory(server_factory: Callable[..., Any]) -> Callable[..., Any]:
    """conftest's live server, trusting the fakes' CA as an operator's setting would."""

    def start(**sections: Any) -> Any:
        return server_factory(outbound_ca_file=lwork_ca().ca_file, **sections)

    return start


@contextlib.asynccontextmanager
async def serving(
    fake: AliyunSmsFake | TencentSmsFake, ca: FakeCa | None = None
) -> AsyncIterator[None]:
    async with serve_asgi_tls(fake.app(), ca) as base:
        fake.url = base + "/"
        try:
            yield
        finally:
            fake.release()


@pytest.fixture
async def aliyun() -> AsyncIterator[AliyunSmsFake]:
    fake = AliyunSmsFake()
    async with serve_asgi_tls(fake.app()) as base:
        fake.url = base + "/"
        try:
            yield fake
        finally:
            fake.release()


@pytest.fixture
async def tencent() -> AsyncIterator[TencentSmsFake]:
    fake = TencentSmsFake()
    async with serve_asgi_tls(fake.app()) as base:
        fake.url = base + "/"
        try:
            yield fake
        finally:
            fake.release()


def sms(provider: str, fallback: str, aliyun: AliyunSmsFake, tencent: TencentSmsFake,
        vendor: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    vendor = vendor or {}
    return {
        "provider": provider,
        "fallback": fallback,
        "aliyun": aliyun.settings(**vendor.get("aliyun", {})),
        "tencent": tencent.settings(**vendor.get("tencent", {})),
    }


async def ask_code(live: Any, phone: str = PHONE) -> dict[str, Any]:
    r = await live.post("/lwork/sms/auth_code", {"uuid": phone, "device_id": DEVICE,
                                                 "type": "register"})  # fmt: skip
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def register_with(live: Any, code: str, phone: str = PHONE) -> None:
    body = {"uuid": phone, "device_id": DEVICE, "auth_code": code, "name": "alice", "pwd": PWD,
            "group_id": "common"}  # fmt: skip
    r = await live.post("/lwork/mobile/register", body)
    assert r.json() == {"status": "ok"}, r.text


async def test_aliyun_delivers_the_code(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake
) -> None:
    async with server_factory(sms=sms("aliyun", "", aliyun, tencent)) as live:
        assert await ask_code(live) == {"status": "ok"}
        assert aliyun.delivered[0]["SignName"] == "lwork"
        await register_with(live, aliyun.last_code(PHONE))
    assert tencent.requests == 0


async def test_tencent_delivers_the_code(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake
) -> None:
    async with server_factory(sms=sms("tencent", "", aliyun, tencent)) as live:
        assert await ask_code(live) == {"status": "ok"}
        # Tencent wants E.164: the mainland number gains +86.
        await register_with(live, tencent.last_code("+86" + PHONE))
    assert aliyun.requests == 0


@pytest.mark.parametrize(
    "refusal", ["isv.BUSINESS_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH", "ServiceUnavailable"]
)
async def test_aliyun_failing_temporarily_fails_over_to_tencent(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake,
    refusal: str,
) -> None:  # fmt: skip
    aliyun.fail_next = [refusal]
    async with server_factory(sms=sms("aliyun", "tencent", aliyun, tencent)) as live:
        assert await ask_code(live) == {"status": "ok"}
        assert aliyun.refused == [refusal]
        await register_with(live, tencent.last_code("+86" + PHONE))


@pytest.mark.parametrize(
    "failure",
    ["error:LimitExceeded.AppDailyLimit", "error:FailedOperation.InsufficientBalanceInSmsPackage",
     "error:InternalError.Timeout", "error:RequestLimitExceeded",
     "status:LimitExceeded.PhoneNumberThirtySecondLimit"],
)  # fmt: skip
async def test_tencent_failing_temporarily_fails_over_to_aliyun(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake,
    failure: str,
) -> None:  # fmt: skip
    tencent.fail_next = [failure]
    async with server_factory(sms=sms("tencent", "aliyun", aliyun, tencent)) as live:
        assert await ask_code(live) == {"status": "ok"}
        assert tencent.refused == [failure.partition(":")[2]]
        await register_with(live, aliyun.last_code(PHONE))


async def test_an_impostor_certificate_gets_no_request_and_the_code_goes_the_other_way(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake
) -> None:
    # Something answering for the vendor's address with a certificate its own CA issued (a
    # man in the middle) must not be sent the signed request: it would learn the number and
    # the code. The send fails as "unreachable" and the fallback vendor delivers.
    aliyun_impostor, tencent_impostor = AliyunSmsFake(), TencentSmsFake()
    async with serving(aliyun_impostor, rogue_ca()), serving(tencent_impostor, rogue_ca()):
        settings = sms("aliyun", "tencent", aliyun_impostor, tencent)
        async with server_factory(sms=settings) as live:
            assert await ask_code(live) == {"status": "ok"}
            await register_with(live, tencent.last_code("+86" + PHONE))
        settings = sms("tencent", "aliyun", aliyun, tencent_impostor)
        async with server_factory(sms=settings) as live:
            assert await ask_code(live, "13900139000") == {"status": "ok"}
            assert aliyun.last_code("13900139000")
    assert aliyun_impostor.requests == 0 and tencent_impostor.requests == 0


async def test_a_refused_number_is_not_tried_elsewhere(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake
) -> None:
    aliyun.fail_next = ["isv.MOBILE_NUMBER_ILLEGAL"]
    async with server_factory(sms=sms("aliyun", "tencent", aliyun, tencent)) as live:
        assert await ask_code(live) == {"status": "failed", "reason": "sms_failed"}
    assert tencent.requests == 0
    tencent.fail_next = ["status:InvalidParameterValue.IncorrectPhoneNumber"]
    async with server_factory(sms=sms("tencent", "aliyun", aliyun, tencent)) as live:
        assert await ask_code(live, "13900139000") == {"status": "failed", "reason": "sms_failed"}
    assert aliyun.requests == 1  # only the first server's


async def test_both_failing_is_reported(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake
) -> None:
    aliyun.fail_next = ["isv.BUSINESS_LIMIT_CONTROL"]
    tencent.fail_next = ["error:InternalError.ServerBusy"]
    async with server_factory(sms=sms("aliyun", "tencent", aliyun, tencent)) as live:
        assert await ask_code(live) == {"status": "failed", "reason": "sms_failed"}
        # The code was burned with the failed send: a later request works normally.
        assert await ask_code(live) == {"status": "ok"}
        await register_with(live, aliyun.last_code(PHONE))


async def test_wrong_keys_are_refused_by_the_vendor_and_failed_over(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake
) -> None:
    vendor = {"aliyun": {"access_key_secret": "not-the-secret"}}
    async with server_factory(sms=sms("aliyun", "tencent", aliyun, tencent, vendor)) as live:
        assert await ask_code(live) == {"status": "ok"}
    assert aliyun.refused == ["SignatureDoesNotMatch"]
    assert tencent.delivered
    vendor = {"tencent": {"secret_key": "not-the-secret"}}
    async with server_factory(sms=sms("tencent", "", aliyun, tencent, vendor)) as live:
        assert await ask_code(live, "13900139000") == {"status": "failed", "reason": "sms_failed"}
    assert tencent.refused == ["AuthFailure.SignatureFailure"]


async def test_malformed_vendor_replies_fail_over(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake
) -> None:
    aliyun.garbage = True
    async with server_factory(sms=sms("aliyun", "tencent", aliyun, tencent)) as live:
        assert await ask_code(live) == {"status": "ok"}
        assert tencent.delivered
    tencent.garbage = True
    async with server_factory(sms=sms("tencent", "", aliyun, tencent)) as live:
        assert await ask_code(live, "13900139000") == {"status": "failed", "reason": "sms_failed"}


async def test_a_hanging_vendor_is_cut_off_and_nothing_else_waits(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake
) -> None:
    aliyun.hang = True
    vendor = {"aliyun": {"timeout_s": 0.5}}
    async with server_factory(sms=sms("aliyun", "tencent", aliyun, tencent, vendor)) as live:
        started = time.monotonic()
        sending = asyncio.create_task(ask_code(live))
        await asyncio.sleep(0.1)
        # While the send waits on Aliyun, other requests are served at once.
        other_started = time.monotonic()
        r = await live.post("/lwork/sms/auth_code", {"uuid": "bad", "type": "nonsense"})
        assert r.status_code in (200, 400)
        assert time.monotonic() - other_started < 0.4
        assert await sending == {"status": "ok"}
        assert 0.5 <= time.monotonic() - started < 2.0
        await register_with(live, tencent.last_code("+86" + PHONE))


async def test_a_list_of_numbers_cannot_be_smuggled_to_the_vendor(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake
) -> None:
    # Aliyun's PhoneNumbers takes a comma-separated list: one request for many paid texts.
    async with server_factory(sms=sms("aliyun", "tencent", aliyun, tencent)) as live:
        for uuid in ["13800138000,13900139000", "+86 138", "1380013800013800138000"]:
            r = await live.post("/lwork/sms/auth_code", {"uuid": uuid, "type": "register"})
            assert r.json() == {"status": "failed", "reason": "sms_failed"}, (uuid, r.text)
        assert aliyun.requests == 0 and tencent.requests == 0
        # Characters that would add query parameters are dropped before the number is used.
        r = await live.post(
            "/lwork/sms/auth_code", {"uuid": "13800138000&SignName=evil", "type": "register"}
        )
        assert r.json() == {"status": "ok"}
    assert [(m["PhoneNumbers"], m["SignName"]) for m in aliyun.delivered] == [
        ("13800138000", "lwork")
    ]


async def test_neither_the_code_nor_a_secret_is_logged(
    server_factory: Callable[..., Any], aliyun: AliyunSmsFake, tencent: TencentSmsFake,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    aliyun.fail_next = ["isv.BUSINESS_LIMIT_CONTROL"]
    tencent.fail_next = ["error:InternalError.ServerBusy"]
    async with server_factory(sms=sms("aliyun", "tencent", aliyun, tencent)) as live:
        assert (await ask_code(live))["status"] == "failed"
        assert (await ask_code(live))["status"] == "ok"
        code = aliyun.last_code(PHONE)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "BUSINESS_LIMIT_CONTROL" in logged  # the failures are logged ...
    for secret in (code, KEY_SECRET, SECRET_KEY):
        assert secret not in logged  # ... without the code or the keys
