"""A billing system (BOSS) client written from CONTRACT §9 alone, not from the server's code.

§9: each request carries ``X-Lwork-Key`` (key id), ``X-Lwork-Timestamp`` (Unix seconds) and
``X-Lwork-Signature``: lowercase hex of HMAC-SHA256(secret,
``<timestamp>\\n<method>\\n<path>\\n<hex SHA-256 of the body>``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SignedRequest:
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class BossClient:
    base_url: str
    key_id: str
    secret: str
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=60))

    def signed(
        self, operation: str, fields: dict[str, Any] | bytes, timestamp: int | None = None
    ) -> SignedRequest:
        path = f"/lwork/boss/v1/{operation}"
        body = fields if isinstance(fields, bytes) else json.dumps(fields).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        text = "\n".join([stamp, "POST", path, hashlib.sha256(body).hexdigest()])
        signature = hmac.new(self.secret.encode(), text.encode(), hashlib.sha256).hexdigest()
        headers = {"X-Lwork-Key": self.key_id, "X-Lwork-Timestamp": stamp,
                   "X-Lwork-Signature": signature, "Content-Type": "application/json"}  # fmt: skip
        return SignedRequest(path, body, headers)

    async def send(self, request: SignedRequest) -> httpx.Response:
        return await self.client.post(
            self.base_url + request.path, content=request.body, headers=request.headers
        )

    async def call(self, operation: str, fields: dict[str, Any] | bytes) -> httpx.Response:
        return await self.send(self.signed(operation, fields))

    async def close(self) -> None:
        await self.client.aclose()
