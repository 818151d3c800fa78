"""A loopback Xiaomi MiPush server API written from Xiaomi's public documentation
(``POST /v3/message/regid``, ``Authorization: key=<AppSecret>``, the server error code table)."""

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

APP_SECRET = "xiaomi-app-secret"
PACKAGE = "com.lwork.app"

FAILURES = {"throttled": 10027, "quota": 10034, "busy": 10002}


@dataclass
class XiaomiPushFake(VendorPushFake):
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v3/message/regid", self._send, methods=["POST"])])

    @staticmethod
    def _error(code: int, reason: str) -> JSONResponse:
        return JSONResponse({"result": "error", "code": code, "reason": reason,
                             "description": reason, "trace_id": "t1"})  # fmt: skip

    async def _send(self, request: Request) -> Response:
        failure = await self.next_failure()
        if failure == "malformed":
            return Response(b"Service Temporarily Unavailable", 200)
        if request.headers.get("authorization") != f"key={APP_SECRET}":
            return self._error(21301, "认证失败")
        if failure in FAILURES:
            return self._error(FAILURES[failure], failure)
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("restricted_package_name") != PACKAGE:
            return self._error(22022, "应用程序package name不合法")
        missing = {"registration_id", "payload", "title", "description"} - set(form)
        if missing:
            return self._error(10016, "缺失必选参数")
        token = form["registration_id"]
        ok: dict[str, Any] = {"result": "ok", "code": 0, "description": "成功",
                              "data": {"id": "scm01b"}, "trace_id": "t1"}  # fmt: skip
        if failure == "dead_token" or token not in self.devices:
            ok["data"]["bad_regids"] = token
            return JSONResponse(ok)
        try:
            event = json.loads(form["payload"])
        except ValueError:
            return self._error(10017, "参数值非法")
        # MiPush has no priority for pass-through messages: a call must be one, with a lifetime.
        call = form.get("pass_through") == "1" and form.get("time_to_live", "").isdigit()
        self.delivered.append(Delivery(token, event, call, form))
        return JSONResponse(ok)

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {"enabled": True, "app_secret": APP_SECRET, "package_name": PACKAGE,
                "base_url": self.base_url, **overrides}  # fmt: skip
