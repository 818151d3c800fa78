"""A loopback Honor Push written from Honor's public documentation (client-credentials token at
``/auth/token``; ``POST /api/v1/{appId}/sendMessage`` with a Bearer token and a ``timestamp``
header; ``failTokens`` / ``expireTokens`` in the answer)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakes.push_vendor import Delivery, VendorPushFake

APP_ID = "104410000"
CLIENT_ID = "honor-client-id"
CLIENT_SECRET = "honor-client-secret"

# Flow control is an HTTP status (429 / 503), as in Huawei's Push Kit whose codes Honor's follow;
# 80300010 is a token-count error there, not a throttle, so no code is claimed for it.
FAILURES: dict[str, tuple[int, int | None]] = {
    "throttled": (429, None),
    "quota": (503, None),
    "busy": (500, 81000001),
}


def _answer(
    status: int, code: int | None, message: str, data: dict[str, Any] | None = None
) -> Response:
    return JSONResponse({"code": code, "message": message, "data": data}, status)


@dataclass
class HonorPushFake(VendorPushFake):
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/auth/token", self._token, methods=["POST"]),
            Route("/api/v1/{app_id}/sendMessage", self._send, methods=["POST"]),
        ])  # fmt: skip

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, 401)
        lifetime = int(self.token_lifetime_s)
        return JSONResponse(
            {"access_token": self.issue(), "expires_in": lifetime, "token_type": "Bearer"}
        )

    async def _send(self, request: Request) -> Response:
        failure = await self.next_failure()
        if failure == "malformed":
            return Response(b"upstream connect error", 200)
        authorization = request.headers.get("authorization", "")
        bearer = (
            authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else None
        )
        state = self.token_state(bearer)
        if state == "expired":
            return _answer(401, 80200003, "access token expired")
        if state != "ok" or request.path_params["app_id"] != APP_ID:
            return _answer(401, 80200001, "authentication error")
        stamp = request.headers.get("timestamp", "")
        if not stamp.isdigit() or abs(time.time() * 1000 - int(stamp)) > 10 * 60_000:
            return _answer(400, 80100003, "timestamp invalid")
        if failure in FAILURES:
            return _answer(*FAILURES[failure], failure)
        try:
            body = json.loads(await request.body())
            [token] = body["token"]
            event = json.loads(body["data"])
        except (ValueError, KeyError, TypeError):
            return _answer(400, 80100003, "illegal payload")
        if failure == "dead_token" or token not in self.devices:
            return _answer(200, 200, "success", {"sendResult": False, "failTokens": [],
                                                "expireTokens": [token]})  # fmt: skip
        call = isinstance(body.get("android", {}).get("ttl"), str)
        self.delivered.append(Delivery(token, event, call, body))
        return _answer(200, 200, "success", {"sendResult": True, "requestId": "r1"})

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {"enabled": True, "app_id": APP_ID, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, "token_url": self.base_url + "/auth/token",
                "base_url": self.base_url, **overrides}  # fmt: skip
