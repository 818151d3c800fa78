"""Calls to WeChat Pay's API v3: each request signed with the merchant's key, each reply
believed only when WeChat Pay's signature over it verifies with a listed platform key and its
timestamp is recent. Network errors, 5xx, throttling and unverifiable replies are
ProviderUnavailable: the caller asks again later with the same numbers (WeChat Pay treats a
repeated ``out_trade_no`` or ``out_refund_no`` as the same operation)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from lwork.payments.provider import ProviderUnavailable
from lwork.payments.wechat_signing import (
    BadSignature,
    authorization,
    reply_message,
    request_message,
    sign,
    verify,
)
from lwork.settings.payments import WechatSettings


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    """The JSON object WeChat Pay answered (``{}`` for an empty 204)."""


def check_signed(
    keys: Mapping[str, rsa.RSAPublicKey],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    window_s: float,
) -> None:
    """BadSignature unless ``body`` carries a recent WeChat Pay signature by a listed key."""
    serial = headers.get("wechatpay-serial", "")
    key = keys.get(serial)
    if key is None:
        raise BadSignature(f"unknown Wechatpay-Serial {serial[:64]!r}")
    timestamp = headers.get("wechatpay-timestamp", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise BadSignature("Wechatpay-Timestamp is not a number")
    if abs(now - int(timestamp)) > window_s:
        raise BadSignature(f"Wechatpay-Timestamp {timestamp} is outside the window")
    nonce = headers.get("wechatpay-nonce", "")
    verify(key, reply_message(timestamp, nonce, body), headers.get("wechatpay-signature", ""))


class WechatGateway:
    def __init__(
        self,
        settings: WechatSettings,
        private: rsa.RSAPrivateKey,
        platform: Mapping[str, rsa.RSAPublicKey],
        wall: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._private = private
        self._platform = platform
        self._wall = wall

    def authorization(self, method: str, path: str, body: str) -> str:
        nonce, timestamp = secrets.token_hex(16), str(int(self._wall()))
        signature = sign(self._private, request_message(method, path, timestamp, nonce, body))
        settings = self._settings
        return authorization(settings.mch_id, settings.merchant_serial_no, nonce, timestamp,
                             signature)  # fmt: skip

    async def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Reply:
        """One verified API call; ``Reply`` for a 2xx or a 4xx WeChat explains, else
        ProviderUnavailable."""
        body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
        headers = {
            "Authorization": self.authorization(method, path, body),
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        try:
            # Orders are opened one per get_payid; reconciliation and refunds are rare: a client
            # per call keeps no pool to close.
            async with httpx.AsyncClient(timeout=self._settings.timeout_s) as client:
                answer = await client.request(method, self._settings.api_url.rstrip("/") + path,
                                              content=body.encode(), headers=headers)  # fmt: skip
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{method} {path}: {type(exc).__name__}") from exc
        if answer.status_code >= 500 or answer.status_code == 429:
            raise ProviderUnavailable(f"{method} {path}: HTTP {answer.status_code}")
        try:
            check_signed(self._platform, answer.headers, answer.content, self._wall(),
                         self._settings.timestamp_window_s)  # fmt: skip
            parsed = json.loads(answer.content) if answer.content else {}
        except (BadSignature, ValueError) as exc:
            raise ProviderUnavailable(f"{method} {path}: reply not verified ({exc})") from exc
        if not isinstance(parsed, dict):
            raise ProviderUnavailable(f"{method} {path}: reply is not an object")
        return Reply(answer.status_code, parsed)
