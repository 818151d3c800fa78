"""SMS providers: one method, ``send(phone, text)``; failures raise ``SmsError``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, Protocol

import httpx

log = logging.getLogger("lwork.sms")


class SmsError(Exception):
    """The message was not accepted by the provider.

    ``temporary`` (the default) says another provider, or a later attempt, may deliver it: the
    provider is down, slow, throttling, out of credit or refusing our credentials. False says the
    message itself is refused (an invalid or barred number), which no other provider would
    deliver either, so no failover is tried."""

    def __init__(self, message: str, *, temporary: bool = True) -> None:
        super().__init__(message)
        self.temporary = temporary


class SmsProvider(Protocol):
    async def send(self, phone: str, text: str, code: str) -> None: ...


class LogSmsProvider:
    """Development only: the message goes to the server log (refused when env=production)."""

    async def send(self, phone: str, text: str, code: str) -> None:
        log.warning("development SMS to %s: %s", phone, text)


@dataclass(frozen=True)
class HttpGatewayConfig:
    url: str
    body_format: Literal["json", "form"] = "json"
    template: dict[str, str] = field(default_factory=lambda: {"to": "{phone}", "text": "{text}"})
    auth_header: str = ""
    success_field: str = ""
    success_value: str = ""
    timeout_s: float = 10.0


class HttpSmsProvider:
    """A generic SMS gateway: POST JSON or a form built from a template."""

    def __init__(self, config: HttpGatewayConfig, client: httpx.AsyncClient) -> None:
        if not config.url:
            raise ValueError("sms.gateway_url is required for sms.provider = 'http'")
        self._config = config
        self._client = client

    async def send(self, phone: str, text: str, code: str) -> None:
        config = self._config
        fields = {
            key: value.format(phone=phone, text=text, code=code)
            for key, value in config.template.items()
        }
        headers = {"Authorization": config.auth_header} if config.auth_header else {}
        try:
            if config.body_format == "json":
                response = await self._client.post(
                    config.url, json=fields, headers=headers, timeout=config.timeout_s
                )
            else:
                response = await self._client.post(
                    config.url, data=fields, headers=headers, timeout=config.timeout_s
                )
        except httpx.HTTPError as exc:
            raise SmsError(f"gateway unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            raise SmsError(f"gateway answered HTTP {response.status_code}")
        if config.success_field:
            try:
                answer = response.json()
            except ValueError as exc:
                raise SmsError("gateway answer is not JSON") from exc
            value = answer.get(config.success_field) if isinstance(answer, dict) else None
            if str(value) != config.success_value:
                raise SmsError(f"gateway refused: {config.success_field}={value!r}")
