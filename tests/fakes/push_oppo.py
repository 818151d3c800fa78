"""A loopback OPPO Push server API written from OPPO's public documentation: ``/server/v1/auth``
checks ``sign = sha256(app_key + timestamp + master_secret)`` (recomputed here) and a timestamp
within 10 minutes, and issues ``auth_token``s; ``/server/v1/message/notification/unicast``
checks the token and the message, and answers OPPO's codes."""

from __future__ import annotations

import hashlib
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

APP_KEY = "oppo-app-key"
MASTER_SECRET = "oppo-master-secret"

FAILURES = {"dead_token": 10000, "throttled": -2, "quota": 33, "busy": -1}


def _answer(code: int, message: str, data: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": data or {}})


@dataclass
class OppoPushFake(VendorPushFake):
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/server/v1/auth", self._auth, methods=["POST"]),
            Route("/server/v1/message/notification/unicast", self._unicast, methods=["POST"]),
        ])  # fmt: skip

    async def _auth(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        timestamp = form.get("timestamp", "")
        if form.get("app_key") != APP_KEY or not timestamp.isdigit():
            return _answer(14, "Invalid AppKey")
        if abs(time.time() * 1000 - int(timestamp)) > 10 * 60 * 1000:
            return _answer(15, "Invalid Timestamp")
        expected = hashlib.sha256((APP_KEY + timestamp + MASTER_SECRET).encode()).hexdigest()
        if form.get("sign") != expected:
            return _answer(16, "Invalid Sign")
        return _answer(0, "Success", {"auth_token": self.issue(), "create_time": timestamp})

    async def _unicast(self, request: Request) -> Response:
        failure = await self.next_failure()
        if failure == "malformed":
            return Response(b'{"code": ', 200)
        if self.token_state(request.headers.get("auth_token")) != "ok":
            return _answer(11, "Invalid AuthToken")
        if failure is not None:
            return _answer(FAILURES[failure], failure)
        try:
            form = dict(parse_qsl((await request.body()).decode()))
            message = json.loads(form["message"])
            token = message["target_value"]
            notification = message["notification"]
            event = json.loads(notification["action_parameters"])
            event["payload"] = json.loads(event["payload"])
        except (ValueError, KeyError, TypeError):
            return _answer(12, "Invalid Param")
        if message.get("target_type") != 2 or not notification.get("channel_id"):
            return _answer(12, "Invalid Param")
        if token not in self.devices:
            return _answer(10000, "Invalid RegistrationId")
        call = notification.get("category") == "IM" and notification.get("notify_level") == 16
        self.delivered.append(Delivery(token, event, call, message))
        return _answer(0, "Success", {"messageId": "m1"})

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {"enabled": True, "app_key": APP_KEY, "master_secret": MASTER_SECRET,
                "base_url": self.base_url, **overrides}  # fmt: skip
