"""How the accounts part reaches the outside: the secret its SMS-code HMACs use, and the SMS
provider the settings name."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

from lwork.accounts.sms import HttpGatewayConfig, HttpSmsProvider, LogSmsProvider, SmsProvider
from lwork.accounts.sms_aliyun import AliyunConfig, AliyunSmsProvider
from lwork.accounts.sms_failover import FailoverSmsProvider
from lwork.accounts.sms_tencent import TencentConfig, TencentSmsProvider
from lwork.settings import Settings, SmsSettings


def server_secret(settings: Settings) -> bytes:
    """The key for HMACs of SMS codes: configured, or generated once into the data directory."""
    configured = settings.secret_key.get_secret_value()
    if configured:
        return configured.encode()
    path = Path(settings.data_dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def sms_provider(config: SmsSettings, client: httpx.AsyncClient) -> SmsProvider:
    primary = _one_provider(config.provider, config, client)
    if config.fallback and config.fallback != config.provider:
        return FailoverSmsProvider(primary, _one_provider(config.fallback, config, client))
    return primary


def _one_provider(name: str, config: SmsSettings, client: httpx.AsyncClient) -> SmsProvider:
    if name == "aliyun":
        aliyun = config.aliyun
        return AliyunSmsProvider(
            AliyunConfig(
                access_key_id=aliyun.access_key_id,
                access_key_secret=aliyun.access_key_secret.get_secret_value(),
                sign_name=aliyun.sign_name,
                template_code=aliyun.template_code,
                template_param=aliyun.template_param,
                endpoint=aliyun.endpoint,
                timeout_s=aliyun.timeout_s,
            ),
            client,
        )
    if name == "tencent":
        tencent = config.tencent
        return TencentSmsProvider(
            TencentConfig(
                secret_id=tencent.secret_id,
                secret_key=tencent.secret_key.get_secret_value(),
                sdk_app_id=tencent.sdk_app_id,
                sign_name=tencent.sign_name,
                template_id=tencent.template_id,
                region=tencent.region,
                endpoint=tencent.endpoint,
                timeout_s=tencent.timeout_s,
            ),
            client,
        )
    if name == "http":
        return HttpSmsProvider(
            HttpGatewayConfig(
                url=config.gateway_url,
                body_format=config.gateway_format,
                template=dict(config.gateway_template),
                auth_header=config.gateway_auth_header.get_secret_value(),
                success_field=config.gateway_success_field,
                success_value=config.gateway_success_value,
                timeout_s=config.gateway_timeout_s,
            ),
            client,
        )
    return LogSmsProvider()
