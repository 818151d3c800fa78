"""A loopback JPush Push API v3 written from JPush's public documentation (``POST /v3/push``
with HTTP Basic ``appKey:masterSecret``; ``{"error": {"code", "message"}}`` answers)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakes.push_vendor import Delivery, VendorPushFake

APP_KEY = "jpush-app-key"
MASTER_SECRET = "jpush-master-secret"

FAILURES = {"throttled": (429, 2002), "quota": (429, 2002), "busy": (500, 1000)}


def _error(status: int, code: int, message: str) -> Response:
    headers = {"X-Rate-Limit-Limit": "600", "X-Rate-Limit-Remaining": "0",
               "X-Rate-Limit-Reset": "1"} if status == 429 else None  # fmt: skip
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers)


@dataclass
class JPushFake(VendorPushFake):
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v3/push", self._push, methods=["POST"])])

    async def _push(self, request: Request) -> Response:
        failure = await self.next_failure()
        if failure == "malformed":
            return Response(b"<html>ok</html>", 200)
        expected = base64.b64encode(f"{APP_KEY}:{MASTER_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return _error(401, 1004, "Authen failed")
        if failure in FAILURES:
            return _error(*FAILURES[failure], failure)
        try:
            body = json.loads(await request.body())
            [token] = body["audience"]["registration_id"]
            message = body["message"]
            event = {"event": message["extras"]["event"],
                     "payload": json.loads(message["msg_content"])}  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return _error(400, 1003, "Parameter value is invalid")
        if failure == "dead_token" or token not in self.devices:
            return _error(400, 1011, "cannot find user by this audience")
        android = body.get("notification", {}).get("android", {})
        call = android.get("priority") == 2 and android.get("category") == "call"
        self.delivered.append(Delivery(token, event, call, body))
        return JSONResponse({"sendno": "0", "msg_id": "54043195528"})

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {"enabled": True, "app_key": APP_KEY, "master_secret": MASTER_SECRET,
                "base_url": self.base_url, **overrides}  # fmt: skip
