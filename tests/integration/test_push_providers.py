"""Each push provider against its loopback fake, through the GuardedProvider wrapper.

The fakes verify signatures and wire formats themselves (see tests/fakes/push_servers.py); every
test also asserts that the fake found no protocol problem. Backoff sleeps go to a recorder, so
nothing here waits for a retry delay.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lwork.push.providers import (
    ApnsConfig,
    ApnsProvider,
    BaiduConfig,
    BaiduProvider,
    FcmConfig,
    FcmProvider,
    GuardedProvider,
    PushMessage,
    PushProvider,
    PushTarget,
    RetryPolicy,
    ServiceAccount,
)

from fakes.push_servers import (
    FakeApnsServer,
    FakeBaiduServer,
    FakeGoogleServer,
    FakeResponse,
    apns_error,
    baidu_error,
    fcm_error,
)

CALL = PushMessage(
    event="p2p_inform_called",
    payload={
        "event": "p2p_inform_called",
        "caller": "8613800000000",
        "opdata": {"session_id": "s1"},
    },
    kind="call",
)
ACCOUNT = PushMessage(event="login_otherwhere", payload={"event": "login_otherwhere"})
APNS_TOKEN = "ab" * 32
BUNDLE = "com.example.lwork"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class SleepRecorder:
    """Stands in for asyncio.sleep in the retry loop: records the delay, yields once."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


class Clock:
    """Injected wall clock the test can move forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """One provider wired to its fake, plus the documented answers the tests need."""

    name: str
    fake: FakeBaiduServer | FakeGoogleServer | FakeApnsServer
    build_inner: Callable[[float], PushProvider]
    target: PushTarget
    temporary_error: FakeResponse
    dead_token_error: FakeResponse
    sleeps: SleepRecorder = field(default_factory=SleepRecorder)

    def guarded(
        self, *, timeout_s: float = 10.0, max_in_flight: int = 8, max_queued: int = 8
    ) -> GuardedProvider:
        policy = RetryPolicy(max_attempts=4, base_delay_s=0.5, max_delay_s=4.0)
        return GuardedProvider(
            self.build_inner(timeout_s),
            policy=policy,
            max_in_flight=max_in_flight,
            max_queued=max_queued,
            sleep=self.sleeps,
        )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
async def h2_client() -> AsyncIterator[httpx.AsyncClient]:
    # Prior-knowledge HTTP/2 over cleartext: the fake APNs speaks h2c; production uses TLS+ALPN.
    async with httpx.AsyncClient(http1=False, http2=True) as http:
        yield http


@pytest.fixture
async def baidu(client: httpx.AsyncClient) -> AsyncIterator[Harness]:
    fake = FakeBaiduServer("test-api-key", "test-secret-key")
    await fake.start()

    def build(timeout_s: float) -> PushProvider:
        config = BaiduConfig(
            api_key="test-api-key",
            secret_key="test-secret-key",
            base_url=fake.base_url,
            timeout_s=timeout_s,
        )
        return BaiduProvider(config, client)

    yield Harness(
        "baidu",
        fake,
        build,
        PushTarget("baidu", "4576635148078535327", user_id="u1", platform="android"),
        temporary_error=baidu_error(30600, "Internal Server Error", status=500),
        dead_token_error=baidu_error(30608, "Bind Relation Not Found", status=404),
    )
    await fake.close()


@pytest.fixture
async def fcm(client: httpx.AsyncClient, rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[Harness]:
    fake = FakeGoogleServer(
        project_id="lwork-test",
        client_email="push@lwork-test.iam.gserviceaccount.com",
        private_key_id="kid-1",
        public_key=rsa_key.public_key(),
    )
    await fake.start()
    account = ServiceAccount(
        client_email="push@lwork-test.iam.gserviceaccount.com",
        private_key_pem=_pem(rsa_key),
        private_key_id="kid-1",
        project_id="lwork-test",
        token_uri=fake.token_uri,
    )

    def build(timeout_s: float) -> PushProvider:
        config = FcmConfig(service_account=account, base_url=fake.base_url, timeout_s=timeout_s)
        return FcmProvider(config, client)

    yield Harness(
        "fcm",
        fake,
        build,
        PushTarget("fcm", "fcm-registration-token-1", platform="android"),
        temporary_error=fcm_error(
            503, "UNAVAILABLE", "The service is currently unavailable.", error_code="UNAVAILABLE"
        ),
        dead_token_error=fcm_error(
            404, "NOT_FOUND", "Requested entity was not found.", error_code="UNREGISTERED"
        ),
    )
    await fake.close()


@pytest.fixture
async def apns(
    h2_client: httpx.AsyncClient, ec_key: ec.EllipticCurvePrivateKey
) -> AsyncIterator[Harness]:
    fake = FakeApnsServer(
        team_id="TEAM123456", key_id="KEY1234567", public_key=ec_key.public_key(), bundle_id=BUNDLE
    )
    await fake.start()

    def build(timeout_s: float) -> PushProvider:
        config = ApnsConfig(
            team_id="TEAM123456",
            key_id="KEY1234567",
            private_key_pem=_pem(ec_key),
            bundle_id=BUNDLE,
            base_url=fake.base_url,
            timeout_s=timeout_s,
        )
        return ApnsProvider(config, h2_client)

    yield Harness(
        "apns",
        fake,
        build,
        PushTarget("apns", APNS_TOKEN, platform="ios"),
        temporary_error=apns_error(503, "ServiceUnavailable"),
        dead_token_error=apns_error(410, "Unregistered", timestamp_ms=1_700_000_000_000),
    )
    await fake.close()


@pytest.fixture(params=["baidu", "fcm", "apns"])
def harness(request: pytest.FixtureRequest) -> Harness:
    value: Harness = request.getfixturevalue(request.param)
    return value


# -- behaviour common to all three providers --------------------------------------------------


async def test_success_is_delivered_in_one_attempt(harness: Harness) -> None:
    provider = harness.guarded()
    result = await provider.send(CALL, harness.target)
    assert result.delivered and result.attempts == 1 and result.rejected_tokens == ()
    assert len(harness.fake.requests) == 1
    assert harness.fake.problems == []
    assert provider.counters.delivered == 1


async def test_temporary_error_is_retried_honouring_retry_after(harness: Harness) -> None:
    error = harness.temporary_error
    harness.fake.enqueue(
        FakeResponse(error.status, error.body, {**error.headers, "retry-after": "3"})
    )
    provider = harness.guarded()
    result = await provider.send(CALL, harness.target)
    assert result.delivered and result.attempts == 2
    assert harness.sleeps.delays == [3.0]
    assert provider.counters.retries == 1 and provider.counters.temporary_errors == 1
    assert harness.fake.problems == []


async def test_temporary_errors_back_off_exponentially_then_give_up(harness: Harness) -> None:
    harness.fake.enqueue(*[harness.temporary_error] * 4)
    provider = harness.guarded()
    result = await provider.send(ACCOUNT, harness.target)
    assert not result.delivered and result.attempts == 4 and result.rejected_tokens == ()
    assert result.failure is not None and result.failure.startswith("temporary")
    assert harness.sleeps.delays == [0.5, 1.0, 2.0]
    assert provider.counters.gave_up == 1


async def test_retry_after_beyond_the_limit_ends_retries(harness: Harness) -> None:
    error = harness.temporary_error
    harness.fake.enqueue(
        FakeResponse(error.status, error.body, {**error.headers, "retry-after": "3600"})
    )
    provider = harness.guarded()
    result = await provider.send(CALL, harness.target)
    assert not result.delivered and result.attempts == 1 and harness.sleeps.delays == []
    assert result.failure is not None and "too long" in result.failure


async def test_dead_token_is_reported_as_data_without_retry(harness: Harness) -> None:
    harness.fake.enqueue(harness.dead_token_error)
    provider = harness.guarded()
    result = await provider.send(CALL, harness.target)
    assert not result.delivered
    assert result.rejected_tokens == (harness.target.token,)
    assert result.attempts == 1 and harness.sleeps.delays == []
    assert provider.counters.rejected_tokens == 1


async def test_timeout_is_temporary(harness: Harness) -> None:
    # The first answer is held far longer than the 1.5 s request timeout; the retry succeeds.
    harness.fake.enqueue(FakeResponse(200, delay_s=60.0))
    provider = harness.guarded(timeout_s=1.5)
    result = await provider.send(CALL, harness.target)
    assert result.delivered and result.attempts == 2
    assert provider.counters.timeouts == 1


async def test_dropped_connection_is_temporary(harness: Harness) -> None:
    harness.fake.enqueue(FakeResponse(200, drop_connection=True))
    provider = harness.guarded()
    result = await provider.send(ACCOUNT, harness.target)
    assert result.delivered and result.attempts == 2


async def test_concurrency_cap_queues_then_rejects(harness: Harness) -> None:
    provider = harness.guarded(max_in_flight=1, max_queued=1)
    harness.fake.hold()
    first = asyncio.create_task(provider.send(CALL, harness.target))
    await harness.fake.wait_for_requests(1)
    second = asyncio.create_task(provider.send(CALL, harness.target))
    async with asyncio.timeout(10):
        while provider.waiting < 1:
            await asyncio.sleep(0)
    third = await provider.send(CALL, harness.target)
    assert not third.delivered and third.failure == "overloaded" and third.attempts == 0
    assert provider.counters.overload_rejected == 1
    harness.fake.release()
    results = await asyncio.gather(first, second)
    assert all(r.delivered for r in results)
    assert len(harness.fake.requests) == 2


# -- Baidu specifics -------------------------------------------------------------------------


async def test_baidu_request_carries_the_event_object(baidu: Harness) -> None:
    await baidu.guarded().send(CALL, baidu.target)
    assert isinstance(baidu.fake, FakeBaiduServer)
    form = baidu.fake.forms[0]
    assert json.loads(form["msg"]) == dict(CALL.payload)
    assert form["msg_type"] == "0" and form["msg_expires"] == "30"
    assert form["channel_id"] == baidu.target.token and form["device_type"] == "3"
    assert baidu.fake.problems == []


async def test_baidu_channel_token_timeout_rejects_channel(baidu: Harness) -> None:
    baidu.fake.enqueue(baidu_error(30607, "Channel Token Timeout"))
    result = await baidu.guarded().send(CALL, baidu.target)
    assert result.rejected_tokens == (baidu.target.token,)


async def test_baidu_wrong_secret_is_a_permanent_failure(baidu: Harness) -> None:
    assert isinstance(baidu.fake, FakeBaiduServer)
    baidu.fake.secret_key = "another-secret"  # the fake now computes a different sign
    provider = baidu.guarded()
    result = await provider.send(CALL, baidu.target)
    assert not result.delivered and result.rejected_tokens == () and result.attempts == 1
    assert result.failure is not None and "30603" in result.failure
    assert provider.counters.permanent_failures == 1


# -- FCM specifics ---------------------------------------------------------------------------


async def test_fcm_sends_a_high_priority_data_message(fcm: Harness) -> None:
    await fcm.guarded().send(CALL, fcm.target)
    body = json.loads(fcm.fake.requests[0].body)["message"]
    assert body["token"] == fcm.target.token
    assert body["android"] == {"priority": "HIGH", "ttl": "30s"}
    assert body["data"]["event"] == "p2p_inform_called"
    assert json.loads(body["data"]["payload"]) == dict(CALL.payload)
    assert fcm.fake.problems == []


async def test_fcm_access_token_is_cached_until_near_expiry(
    client: httpx.AsyncClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    clock = Clock()
    fake = FakeGoogleServer(
        project_id="p",
        client_email="sa@p.iam.gserviceaccount.com",
        private_key_id="k",
        public_key=rsa_key.public_key(),
        clock=clock,
        token_lifetime_s=3600,
    )
    await fake.start()
    try:
        account = ServiceAccount(
            "sa@p.iam.gserviceaccount.com", _pem(rsa_key), "k", "p", fake.token_uri
        )
        config = FcmConfig(account, base_url=fake.base_url, token_refresh_margin_s=300)
        provider = FcmProvider(config, client, clock=clock)
        target = PushTarget("fcm", "t1")
        assert (await provider.send(ACCOUNT, target)).delivered
        clock.now += 3000  # 600 s left: still fresh
        assert (await provider.send(ACCOUNT, target)).delivered
        assert len(fake.token_requests) == 1
        clock.now += 400  # within the 300 s margin: exchange again
        assert (await provider.send(ACCOUNT, target)).delivered
        assert len(fake.token_requests) == 2
        auths = [r.header("authorization") for r in fake.requests]
        assert auths[0] == auths[1] != auths[2]
        assert fake.problems == []
    finally:
        await fake.close()


async def test_fcm_refused_access_token_is_replaced(fcm: Harness) -> None:
    assert isinstance(fcm.fake, FakeGoogleServer)
    provider = fcm.guarded()
    assert (await provider.send(ACCOUNT, fcm.target)).delivered
    fcm.fake.revoked.update(fcm.fake.issued)  # server-side revocation -> 401 UNAUTHENTICATED
    result = await provider.send(ACCOUNT, fcm.target)
    assert result.delivered and result.attempts == 2
    assert len(fcm.fake.token_requests) == 2


async def test_fcm_invalid_token_argument_rejects_token(fcm: Harness) -> None:
    fcm.fake.enqueue(
        fcm_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            error_code="INVALID_ARGUMENT",
        )
    )
    result = await fcm.guarded().send(CALL, fcm.target)
    assert result.rejected_tokens == (fcm.target.token,)


async def test_fcm_invalid_data_argument_is_permanent_not_a_dead_token(fcm: Harness) -> None:
    fcm.fake.enqueue(
        fcm_error(
            400,
            "INVALID_ARGUMENT",
            "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
            field_name="message.data[0].value",
        )
    )
    result = await fcm.guarded().send(CALL, fcm.target)
    assert not result.delivered and result.rejected_tokens == () and result.attempts == 1


async def test_fcm_rejected_assertion_is_a_permanent_failure(fcm: Harness) -> None:
    assert isinstance(fcm.fake, FakeGoogleServer)
    fcm.fake.enqueue_token(
        FakeResponse.json(400, {"error": "invalid_grant", "error_description": "Invalid JWT"})
    )
    result = await fcm.guarded().send(CALL, fcm.target)
    assert not result.delivered and result.attempts == 1
    assert result.failure is not None and "invalid_grant" in result.failure
    assert fcm.fake.requests == []


# -- APNs specifics --------------------------------------------------------------------------


async def test_apns_call_is_a_voip_push_with_short_expiry(apns: Harness) -> None:
    await apns.guarded().send(CALL, apns.target)
    request = apns.fake.requests[0]
    assert request.path == f"/3/device/{APNS_TOKEN}"
    assert request.header("apns-push-type") == "voip"
    assert request.header("apns-topic") == f"{BUNDLE}.voip"
    assert request.header("apns-priority") == "10"
    assert request.header(":scheme") == "http" and request.method == "POST"
    expiration = int(request.header("apns-expiration") or 0)
    assert 0 < expiration - time.time() <= 31
    assert json.loads(request.body) == {"aps": {}, "lwork": dict(CALL.payload)}
    assert apns.fake.problems == []


async def test_apns_account_event_is_an_alert(apns: Harness) -> None:
    await apns.guarded().send(ACCOUNT, apns.target)
    request = apns.fake.requests[0]
    assert request.header("apns-push-type") == "alert"
    assert request.header("apns-topic") == BUNDLE
    assert json.loads(request.body)["aps"]["alert"] == "login_otherwhere"
    assert apns.fake.problems == []


async def test_apns_provider_token_is_reused_and_renewed_when_expired(apns: Harness) -> None:
    provider = apns.guarded()
    assert (await provider.send(ACCOUNT, apns.target)).delivered
    assert (await provider.send(ACCOUNT, apns.target)).delivered
    apns.fake.enqueue(apns_error(403, "ExpiredProviderToken"))
    result = await provider.send(ACCOUNT, apns.target)
    assert result.delivered and result.attempts == 2
    auths = [r.header("authorization") for r in apns.fake.requests]
    assert auths[0] == auths[1] == auths[2] != auths[3]
    assert apns.fake.problems == []


async def test_apns_bad_device_token_rejects_token(apns: Harness) -> None:
    apns.fake.enqueue(apns_error(400, "BadDeviceToken"))
    result = await apns.guarded().send(CALL, apns.target)
    assert result.rejected_tokens == (apns.target.token,)


async def test_apns_malformed_token_is_rejected_without_a_request(apns: Harness) -> None:
    target = PushTarget("apns", "not/a/hex/token")
    result = await apns.guarded().send(CALL, target)
    assert result.rejected_tokens == (target.token,)
    assert apns.fake.requests == []


async def test_apns_too_many_requests_honours_retry_after(apns: Harness) -> None:
    apns.fake.enqueue(apns_error(429, "TooManyRequests", headers={"retry-after": "2"}))
    result = await apns.guarded().send(CALL, apns.target)
    assert result.delivered and apns.sleeps.delays == [2.0]


async def test_apns_streams_share_one_connection_concurrently(apns: Harness) -> None:
    provider = apns.guarded(max_in_flight=4)
    results = await asyncio.gather(*(provider.send(CALL, apns.target) for _ in range(4)))
    assert all(r.delivered for r in results)
    assert len(apns.fake.requests) == 4 and apns.fake.problems == []
