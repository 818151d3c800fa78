"""Building the push channel's parts from settings (called by the composition root)."""

from __future__ import annotations

from typing import Any

import httpx

from lwork.push.bus import Bus, InProcessBus, RedisBus
from lwork.push.providers import (
    ApnsConfig,
    ApnsProvider,
    BaiduConfig,
    BaiduProvider,
    FcmConfig,
    FcmProvider,
    GuardedProvider,
    PushProvider,
    RetryPolicy,
    ServiceAccount,
)
from lwork.push.providers.honor import HonorProvider
from lwork.push.providers.huawei import HuaweiProvider
from lwork.push.providers.jpush import JPushProvider
from lwork.push.providers.oppo import OppoProvider
from lwork.push.providers.vendor import VendorProvider
from lwork.push.providers.vivo import VivoProvider
from lwork.push.providers.xiaomi import XiaomiProvider
from lwork.settings import BusSettings, PushSettings


def build_bus(settings: BusSettings) -> Bus:
    return RedisBus(settings.url) if settings.url else InProcessBus()


def build_providers(
    settings: PushSettings, client: httpx.AsyncClient, http2_client: httpx.AsyncClient
) -> dict[str, PushProvider]:
    """The configured third-party providers, each wrapped with retries and a concurrency cap."""
    retry = settings.retry
    policy = RetryPolicy(
        max_attempts=retry.max_attempts,
        base_delay_s=retry.base_delay_s,
        max_delay_s=retry.max_delay_s,
        max_retry_after_s=retry.max_retry_after_s,
        attempt_timeout_s=retry.attempt_timeout_s,
    )
    providers: dict[str, PushProvider] = {}
    baidu = settings.baidu
    if baidu.enabled:
        config = BaiduConfig(
            api_key=baidu.api_key,
            secret_key=baidu.secret_key.get_secret_value(),
            base_url=baidu.base_url,
            device_type=baidu.device_type,
            deploy_status=baidu.deploy_status,
            timeout_s=baidu.timeout_s,
        )
        providers["baidu"] = GuardedProvider(
            BaiduProvider(config, client),
            policy=policy,
            max_in_flight=baidu.max_in_flight,
            max_queued=baidu.max_queued,
        )
    fcm = settings.fcm
    if fcm.enabled:
        if fcm.service_account_file is None:
            raise ValueError("push.fcm.service_account_file is required when FCM is enabled")
        account = ServiceAccount.parse(fcm.service_account_file.read_text())
        fcm_config = FcmConfig(
            service_account=account,
            project_id=fcm.project_id,
            base_url=fcm.base_url,
            token_uri=fcm.token_uri,
            timeout_s=fcm.timeout_s,
        )
        providers["fcm"] = GuardedProvider(
            FcmProvider(fcm_config, client),
            policy=policy,
            max_in_flight=fcm.max_in_flight,
            max_queued=fcm.max_queued,
        )
    apns = settings.apns
    if apns.enabled:
        if apns.private_key_file is None:
            raise ValueError("push.apns.private_key_file is required when APNs is enabled")
        apns_config = ApnsConfig(
            team_id=apns.team_id,
            key_id=apns.key_id,
            private_key_pem=apns.private_key_file.read_text(),
            bundle_id=apns.bundle_id,
            base_url=apns.base_url,
            timeout_s=apns.timeout_s,
        )
        providers["apns"] = GuardedProvider(
            ApnsProvider(apns_config, http2_client),
            policy=policy,
            max_in_flight=apns.max_in_flight,
            max_queued=apns.max_queued,
        )
    _add_vendors(settings, client, policy, providers)
    return providers


def _guard(inner: PushProvider, policy: RetryPolicy, in_flight: int, queued: int) -> PushProvider:
    return GuardedProvider(inner, policy=policy, max_in_flight=in_flight, max_queued=queued)


def _add_vendors(
    settings: PushSettings,
    client: httpx.AsyncClient,
    policy: RetryPolicy,
    providers: dict[str, PushProvider],
) -> None:
    """The Chinese phone makers' push services (one registration ``provider`` value each)."""
    vendors: list[VendorProvider[Any]] = []
    if settings.huawei.enabled:
        vendors.append(HuaweiProvider(settings.huawei, client))
    if settings.xiaomi.enabled:
        vendors.append(XiaomiProvider(settings.xiaomi, client))
    if settings.oppo.enabled:
        vendors.append(OppoProvider(settings.oppo, client))
    if settings.vivo.enabled:
        vendors.append(VivoProvider(settings.vivo, client))
    if settings.honor.enabled:
        vendors.append(HonorProvider(settings.honor, client))
    if settings.jpush.enabled:
        vendors.append(JPushProvider(settings.jpush, client))
    for vendor in vendors:
        section = vendor.settings
        providers[vendor.name] = _guard(vendor, policy, section.max_in_flight, section.max_queued)
