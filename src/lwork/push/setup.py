"""Building the push channel's parts from settings (called by the composition root)."""

from __future__ import annotations

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
from lwork.push.providers.honor import HonorConfig, HonorProvider
from lwork.push.providers.huawei import HuaweiConfig, HuaweiProvider
from lwork.push.providers.jpush import JPushConfig, JPushProvider
from lwork.push.providers.oppo import OppoConfig, OppoProvider
from lwork.push.providers.vivo import VivoConfig, VivoProvider
from lwork.push.providers.xiaomi import XiaomiConfig, XiaomiProvider
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
    huawei = settings.huawei
    if huawei.enabled:
        huawei_config = HuaweiConfig(
            app_id=huawei.app_id,
            app_secret=huawei.app_secret.get_secret_value(),
            token_url=huawei.token_url,
            base_url=huawei.base_url,
            timeout_s=huawei.timeout_s,
        )
        providers["huawei"] = _guard(
            HuaweiProvider(huawei_config, client), policy, huawei.max_in_flight, huawei.max_queued
        )
    xiaomi = settings.xiaomi
    if xiaomi.enabled:
        xiaomi_config = XiaomiConfig(
            app_secret=xiaomi.app_secret.get_secret_value(),
            package_name=xiaomi.package_name,
            base_url=xiaomi.base_url,
            timeout_s=xiaomi.timeout_s,
        )
        providers["xiaomi"] = _guard(
            XiaomiProvider(xiaomi_config, client), policy, xiaomi.max_in_flight, xiaomi.max_queued
        )
    oppo = settings.oppo
    if oppo.enabled:
        oppo_config = OppoConfig(
            app_key=oppo.app_key,
            master_secret=oppo.master_secret.get_secret_value(),
            channel_id=oppo.channel_id,
            base_url=oppo.base_url,
            timeout_s=oppo.timeout_s,
        )
        providers["oppo"] = _guard(
            OppoProvider(oppo_config, client), policy, oppo.max_in_flight, oppo.max_queued
        )
    vivo = settings.vivo
    if vivo.enabled:
        vivo_config = VivoConfig(
            app_id=vivo.app_id,
            app_key=vivo.app_key,
            app_secret=vivo.app_secret.get_secret_value(),
            base_url=vivo.base_url,
            timeout_s=vivo.timeout_s,
        )
        providers["vivo"] = _guard(
            VivoProvider(vivo_config, client), policy, vivo.max_in_flight, vivo.max_queued
        )
    honor = settings.honor
    if honor.enabled:
        honor_config = HonorConfig(
            app_id=honor.app_id,
            client_id=honor.client_id,
            client_secret=honor.client_secret.get_secret_value(),
            token_url=honor.token_url,
            base_url=honor.base_url,
            timeout_s=honor.timeout_s,
        )
        providers["honor"] = _guard(
            HonorProvider(honor_config, client), policy, honor.max_in_flight, honor.max_queued
        )
    jpush = settings.jpush
    if jpush.enabled:
        jpush_config = JPushConfig(
            app_key=jpush.app_key,
            master_secret=jpush.master_secret.get_secret_value(),
            base_url=jpush.base_url,
            timeout_s=jpush.timeout_s,
        )
        providers["jpush"] = _guard(
            JPushProvider(jpush_config, client), policy, jpush.max_in_flight, jpush.max_queued
        )
