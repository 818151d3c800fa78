"""The server side of ``bench.http_bench``: lwork plus a bare Starlette endpoint, one process.

    python -m bench.http_server SETTINGS_JSON PORT

``/bare`` goes to a minimal Starlette app (the reference), everything else to lwork, so both are
measured on the same event loop, interpreter and uvicorn configuration: one worker, uvloop,
httptools, no access log.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from lwork.app import build_app
from lwork.settings import Settings

BARE_PATH = "/bare"


def bare_app() -> Starlette:
    async def bare(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route(BARE_PATH, bare, methods=["GET", "POST"])])


def dispatcher(lwork: ASGIApp, bare: ASGIApp) -> ASGIApp:
    """Route ``/bare`` to the reference app; lifespan and every other path to lwork."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == BARE_PATH:
            await bare(scope, receive, send)
        else:
            await lwork(scope, receive, send)

    return app


def main(settings_file: str, port: int) -> None:
    overrides: dict[str, Any] = json.loads(Path(settings_file).read_text())
    lwork, _ = build_app(Settings(**overrides))
    uvicorn.run(
        dispatcher(lwork, bare_app()),
        host="127.0.0.1",
        port=port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m bench.http_server SETTINGS_JSON PORT")
    main(sys.argv[1], int(sys.argv[2]))
