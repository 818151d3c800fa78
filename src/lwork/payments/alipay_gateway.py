"""Calls to Alipay's open-platform gateway: a form POST signed RSA2 with the application's key,
whose reply is believed only once its ``sign`` verifies with Alipay's public key over the exact
text of ``<method>_response``. Network errors, 5xx and unverifiable replies are
ProviderUnavailable: the caller asks again later with the same numbers."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from lwork.payments.alipay_reply import Unreadable, parsed, response_text
from lwork.payments.provider import ProviderUnavailable
from lwork.settings.payments import AlipaySettings

BEIJING = ZoneInfo("Asia/Shanghai")


def canonical(params: Mapping[str, str], *skip: str) -> bytes:
    """What RSA2 signs: every non-empty parameter but ``skip``, sorted, ``k=v`` joined by ``&``."""
    # Names sorted alone, and the pairs joined from a list: a notification's is checked at
    # every one (sorting (k, v) tuples and joining a generator cost a third more).
    return "&".join(
        [f"{k}={params[k]}" for k in sorted(params) if k not in skip and params[k] != ""]
    ).encode()


class Gateway:
    def __init__(
        self, settings: AlipaySettings, private: rsa.RSAPrivateKey, public: rsa.RSAPublicKey
    ) -> None:
        self._settings = settings
        self._private = private
        self._public = public

    def signed_params(self, method: str, biz: dict[str, str]) -> dict[str, str]:
        params = {
            "app_id": self._settings.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "biz_content": json.dumps(biz, separators=(",", ":"), ensure_ascii=False),
        }
        signature = self._private.sign(canonical(params), padding.PKCS1v15(), hashes.SHA256())
        return params | {"sign": base64.b64encode(signature).decode()}

    async def call(self, method: str, biz: dict[str, str]) -> dict[str, Any]:
        """The verified ``<method>_response`` object (success or a business error)."""
        params = self.signed_params(method, biz)
        try:
            # Reconciliation and refunds are rare: a client per call keeps no pool to close.
            async with httpx.AsyncClient(timeout=self._settings.timeout_s) as client:
                reply = await client.post(self._settings.gateway_url, data=params)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{method}: {type(exc).__name__}") from exc
        if reply.status_code != 200:
            raise ProviderUnavailable(f"{method}: HTTP {reply.status_code}")
        key = method.replace(".", "_") + "_response"
        try:
            text = response_text(reply.text, key)
            sign = json.loads(reply.text).get("sign")
            if not isinstance(sign, str):
                raise Unreadable("reply has no sign")
            self._public.verify(base64.b64decode(sign, validate=True), text.encode(),
                                padding.PKCS1v15(), hashes.SHA256())  # fmt: skip
            return parsed(text)
        except (Unreadable, InvalidSignature, binascii.Error, ValueError) as exc:
            raise ProviderUnavailable(f"{method}: reply not verified ({exc})") from exc
