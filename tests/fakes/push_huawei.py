"""A loopback Huawei Push Kit written from Huawei's public documentation (OAuth 2.0 client
credentials at ``/oauth2/v3/token``; ``POST /v1/{appId}/messages:send``; result codes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakes.push_vendor import Delivery, VendorPushFake

APP_ID = "10468573"
APP_SECRET = "huawei-app-secret"

# Generic failure -> (HTTP status, documented code). Push Kit documents flow control as an HTTP
# status (503 "traffic control"), not as a result code: 80300010, which an earlier version of this
# fake sent for it, is "the number of tokens in the message body does not meet the default".
FAILURES: dict[str, tuple[int, str | None]] = {
    "dead_token": (200, "80300007"),  # All the tokens are invalid
    "throttled": (503, None),  # traffic control (Retry-After sent)
    "quota": (429, None),
    "busy": (500, "81000001"),  # System inner error
}


@dataclass
class HuaweiPushFake(VendorPushFake):
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/oauth2/v3/token", self._token, methods=["POST"]),
            Route("/v1/{app_id}/messages:send", self._send, methods=["POST"]),
        ])  # fmt: skip

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": 1102, "error_description": "bad grant"}, 400)
        if form.get("client_id") != APP_ID or form.get("client_secret") != APP_SECRET:
            return JSONResponse({"error": 1101, "error_description": "invalid client"}, 401)
        lifetime = int(self.token_lifetime_s)
        return JSONResponse(
            {"access_token": self.issue(), "expires_in": lifetime, "token_type": "Bearer"}
        )

    @staticmethod
    def _answer(status: int, code: str | None, msg: str) -> JSONResponse:
        headers = {"Retry-After": "1"} if status in (429, 503) else None
        body = {"msg": msg, "requestId": "r1"} if code is None else {"code": code, "msg": msg,
                                                                     "requestId": "r1"}  # fmt: skip
        return JSONResponse(body, status, headers)

    async def _send(self, request: Request) -> Response:
        failure = await self.next_failure()
        if failure == "malformed":
            return Response(b"<html>gateway error</html>", 502)
        authorization = request.headers.get("authorization", "")
        state = self.token_state(authorization.removeprefix("Bearer ") if
                                 authorization.startswith("Bearer ") else None)  # fmt: skip
        if state == "expired":
            return self._answer(401, "80200003", "OAuth token expired")
        if state != "ok" or request.path_params["app_id"] != APP_ID:
            return self._answer(401, "80200001", "OAuth authentication error")
        if failure is not None:
            return self._answer(*FAILURES[failure], failure)
        try:
            body: dict[str, Any] = json.loads(await request.body())
            message = body["message"]
            tokens = message["token"]
            data = json.loads(message["data"])  # data messages carry a string
        except (ValueError, KeyError, TypeError):
            return self._answer(400, "80100003", "Illegal payload")
        if not isinstance(tokens, list) or len(tokens) != 1:
            return self._answer(400, "80100003", "Illegal payload")
        if tokens[0] not in self.devices:
            return self._answer(200, "80300007", "All the tokens are invalid")
        android = message.get("android", {})
        voip = android.get("urgency") == "HIGH" and android.get("category") == "VOIP"
        self.delivered.append(Delivery(tokens[0], data, voip, body))
        return self._answer(200, "80000000", "Success")

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {"enabled": True, "app_id": APP_ID, "app_secret": APP_SECRET,
                "token_url": self.base_url + "/oauth2/v3/token", "base_url": self.base_url,
                **overrides}  # fmt: skip
