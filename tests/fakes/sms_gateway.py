"""A loopback SMS gateway that records what it was asked to send."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class SmsGateway:
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    answer: dict[str, Any] = field(default_factory=lambda: {"result": "0"})
    status_code: int = 200

    def app(self) -> Starlette:
        async def send(request: Request) -> JSONResponse:
            if request.headers.get("content-type", "").startswith("application/json"):
                body = await request.json()
            else:
                body = dict(await request.form())
            self.received.append(body)
            self.headers.append(dict(request.headers))
            return JSONResponse(self.answer, status_code=self.status_code)

        return Starlette(routes=[Route("/send", send, methods=["POST"])])

    def last_code(self, phone: str) -> str:
        for body in reversed(self.received):
            if body.get("to") == phone:
                match = re.search(r"\b(\d{6})\b", str(body.get("text", "")))
                assert match, body
                return match.group(1)
        raise AssertionError(f"no SMS was sent to {phone}")
