"""Third-party push providers (Baidu Cloud Push, FCM HTTP v1, APNs) behind one protocol.

Wire a provider as ``GuardedProvider(ApnsProvider(config, client), policy=...,
max_in_flight=config.max_in_flight, max_queued=config.max_queued)``; the APNs client must be
``httpx.AsyncClient(http2=True)``.
"""

from lwork.push.providers.apns import (
    APNS_PRODUCTION_URL,
    APNS_SANDBOX_URL,
    ApnsConfig,
    ApnsProvider,
    build_apns_request,
    classify_apns_response,
    make_apns_jwt,
)
from lwork.push.providers.baidu import (
    BAIDU_BASE_URL,
    BaiduConfig,
    BaiduProvider,
    baidu_sign,
    build_baidu_request,
    classify_baidu_response,
)
from lwork.push.providers.base import (
    ACCOUNT_TTL_S,
    CALL_TTL_S,
    PermanentPushError,
    PushError,
    PushKind,
    PushMessage,
    PushProvider,
    PushResult,
    PushTarget,
    PushTimeoutError,
    TemporaryPushError,
)
from lwork.push.providers.fcm import (
    FcmConfig,
    FcmProvider,
    build_fcm_message,
    classify_fcm_response,
)
from lwork.push.providers.fcm_auth import (
    AccessToken,
    GoogleTokenSource,
    ServiceAccount,
    make_google_service_jwt,
)
from lwork.push.providers.guard import GuardedProvider, PushCounters, RetryPolicy, backoff_delay

__all__ = [
    "ACCOUNT_TTL_S",
    "APNS_PRODUCTION_URL",
    "APNS_SANDBOX_URL",
    "BAIDU_BASE_URL",
    "CALL_TTL_S",
    "AccessToken",
    "ApnsConfig",
    "ApnsProvider",
    "BaiduConfig",
    "BaiduProvider",
    "FcmConfig",
    "FcmProvider",
    "GoogleTokenSource",
    "GuardedProvider",
    "PermanentPushError",
    "PushCounters",
    "PushError",
    "PushKind",
    "PushMessage",
    "PushProvider",
    "PushResult",
    "PushTarget",
    "PushTimeoutError",
    "RetryPolicy",
    "ServiceAccount",
    "TemporaryPushError",
    "backoff_delay",
    "baidu_sign",
    "build_apns_request",
    "build_baidu_request",
    "build_fcm_message",
    "classify_apns_response",
    "classify_baidu_response",
    "classify_fcm_response",
    "make_apns_jwt",
    "make_google_service_jwt",
]
