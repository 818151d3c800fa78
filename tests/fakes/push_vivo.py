"""A loopback vivo Push server API written from vivo's public documentation: ``/message/auth``
checks ``sign = md5(appId + appKey + timestamp + appSecret)`` (recomputed here) and a recent
timestamp and issues ``authToken``s; ``/message/send`` checks the token, the message and a
``requestId`` never used before, and answers vivo's result codes."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakes.push_vendor import Delivery, VendorPushFake

APP_ID = "10004"
APP_KEY = "vivo-app-key"
APP_SECRET = "vivo-app-secret"

FAILURES = {"dead_token": 10302, "throttled": 10071, "quota": 10070, "busy": 10001}


def _answer(result: int, desc: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"result": result, "desc": desc, **extra})


@dataclass
class VivoPushFake(VendorPushFake):
    request_ids: set[str] = field(default_factory=set)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/message/auth", self._auth, methods=["POST"]),
            Route("/message/send", self._send, methods=["POST"]),
        ])  # fmt: skip

    async def _auth(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            timestamp = str(body["timestamp"])
        except (ValueError, KeyError, TypeError):
            return _answer(10200, "参数不合法")
        if body.get("appId") != APP_ID or body.get("appKey") != APP_KEY:
            return _answer(10101, "appId 或 appKey 不合法")
        if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 10 * 60_000:
            return _answer(10102, "timestamp 不合法")
        text = (APP_ID + APP_KEY + timestamp + APP_SECRET).encode()
        if body.get("sign") != hashlib.md5(text, usedforsecurity=False).hexdigest():
            return _answer(10103, "sign 校验失败")
        return _answer(0, "请求成功", authToken=self.issue())

    async def _send(self, request: Request) -> Response:
        failure = await self.next_failure()
        if failure == "malformed":
            return Response(b"[]", 200)
        if self.token_state(request.headers.get("authtoken")) != "ok":
            return _answer(10000, "authToken 不合法或已过期")
        if failure is not None:
            return _answer(FAILURES[failure], failure)
        try:
            body = json.loads(await request.body())
            token, request_id = body["regId"], body["requestId"]
            custom = body["clientCustomMap"]
            event = {"event": custom["event"], "payload": json.loads(custom["payload"])}
        except (ValueError, KeyError, TypeError):
            return _answer(10200, "参数不合法")
        if body.get("appId") != APP_ID:  # v2.9.2: compared with the authToken's app
            return _answer(10094, "appId 与鉴权信息不一致")
        if request_id in self.request_ids:
            return _answer(10250, "requestId 重复")
        self.request_ids.add(request_id)
        if token not in self.devices:
            return _answer(10302, "regId 不存在")
        call = body.get("classification") == 1 and body.get("category") == "IM"
        self.delivered.append(Delivery(token, event, call, body))
        return _answer(0, "请求成功", taskId="t1")

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {"enabled": True, "app_id": APP_ID, "app_key": APP_KEY, "app_secret": APP_SECRET,
                "base_url": self.base_url, **overrides}  # fmt: skip
