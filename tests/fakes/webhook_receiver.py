"""A BOSS receiving the CDR webhook on a real loopback socket: it checks each request's
signature as CONTRACT §9 writes it (computed here, not with lwork's code), and can fail, hang or
acknowledge twice on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakes.servers import serve_asgi

PATH = "/boss/cdrs"


@dataclass
class WebhookReceiver:
    key_id: str
    secret: str
    fail: Callable[[int], bool] = lambda n: False
    """Whether the ``n``-th request (from 0) is answered 503 (after it was read and checked)."""
    fail_record: Callable[[dict[str, Any]], bool] = lambda record: False
    """Whether a request carrying this record is answered 503 (as ``fail``)."""
    hang_s: float = 0.0
    """How long every request is held before it is answered."""
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    """Every record of a request answered 2xx, in arrival order (duplicates included)."""
    refused: int = 0
    bad_signatures: int = 0
    requests: int = 0

    def ids(self) -> list[str]:
        return [record["id"] for record in self.received]

    def app(self) -> Starlette:
        async def cdrs(request: Request) -> Response:
            body = await request.body()
            digest = hashlib.sha256(body).hexdigest()
            timestamp = request.headers.get("x-lwork-timestamp", "")
            message = f"{timestamp}\nPOST\n{PATH}\n{digest}".encode()
            expected = hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()
            n = self.requests
            self.requests += 1
            if (
                request.headers.get("x-lwork-key") != self.key_id
                or not hmac.compare_digest(expected, request.headers.get("x-lwork-signature", ""))
                or abs(time.time() - float(timestamp or 0)) > 300
            ):
                self.bad_signatures += 1
                return JSONResponse({"status": "failed", "reason": "bad_signature"}, 401)
            if self.hang_s:
                await asyncio.sleep(self.hang_s)
            record = json.loads(body)
            if self.fail(n) or self.fail_record(record):
                self.refused += 1
                return JSONResponse({"status": "failed", "reason": "busy"}, 503)
            self.received.append(record)
            return JSONResponse({"status": "ok"})

        return Starlette(routes=[Route(PATH, cdrs, methods=["POST"])])


@contextlib.asynccontextmanager
async def webhook_receiver(receiver: WebhookReceiver) -> AsyncIterator[WebhookReceiver]:
    async with serve_asgi(receiver.app()) as url:
        receiver.url = url + PATH
        yield receiver
