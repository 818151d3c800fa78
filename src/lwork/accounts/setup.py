"""How the accounts part reaches the outside: the secret its SMS-code HMACs use, and the SMS
provider the settings name."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

from lwork.accounts.sms import HttpGatewayConfig, HttpSmsProvider, LogSmsProvider, SmsProvider
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
    if config.provider == "http":
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
