"""The Chinese push vendors' HTTPS fakes (tests/fakes/push_*.py) in a process of their own, for
``bench.push_vendor_bench``: one server per vendor, each with two extra routes.

* ``POST /_bench/bare`` answers ``{}`` at once: the reference round trip, on the same server, the
  same TLS and the same HTTP stack as the vendor's routes, without the vendor's checks;
* ``GET /_bench/delivered?since=<n>`` lists when (``time.monotonic``, one clock for every process
  on the machine) the fake took each message from the ``n``-th on, and what it was.

Run as ``python -m bench._vendor_fakes <ca.pem> <server.pem> <server.key>``; prints one JSON line
``{vendor: base_url}`` once every server listens, then serves until stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fakes.push_honor import HonorPushFake
from fakes.push_huawei import HuaweiPushFake
from fakes.push_jpush import JPushFake
from fakes.push_oppo import OppoPushFake
from fakes.push_vendor import VendorPushFake
from fakes.push_vivo import VivoPushFake
from fakes.push_xiaomi import XiaomiPushFake
from fakes.tls import FakeCa, serve_asgi_tls

FAKES: dict[str, type[VendorPushFake]] = {
    "huawei": HuaweiPushFake,
    "xiaomi": XiaomiPushFake,
    "oppo": OppoPushFake,
    "vivo": VivoPushFake,
    "honor": HonorPushFake,
    "jpush": JPushFake,
}


def with_bench_routes(fake: VendorPushFake) -> Starlette:
    async def bare(request: Request) -> Response:
        await request.body()
        return JSONResponse({})

    async def delivered(request: Request) -> Response:
        since = int(request.query_params.get("since", "0"))
        taken = [{"at": d.at, "token": d.token, "event": d.event, "call": d.call_priority}
                 for d in fake.delivered[since:]]  # fmt: skip
        return JSONResponse({"count": len(fake.delivered), "delivered": taken,
                             "problems": fake.problems})  # fmt: skip

    return Starlette(routes=[
        Route("/_bench/bare", bare, methods=["POST"]),
        Route("/_bench/delivered", delivered, methods=["GET"]),
        Mount("/", app=fake.app()),
    ])  # fmt: skip


async def serve(ca: FakeCa) -> None:
    async with AsyncExitStack() as stack:
        urls: dict[str, Any] = {}
        for name, kind in FAKES.items():
            fake = kind(devices={f"device-{n}" for n in range(64)} | {"device-token-1"})
            fake.token_lifetime_s = 24 * 3600.0
            base = await stack.enter_async_context(serve_asgi_tls(with_bench_routes(fake), ca))
            fake.base_url = base
            urls[name] = {"base_url": base, "settings": fake.settings()}  # type: ignore[attr-defined]
        print(json.dumps(urls), flush=True)
        # Serve until the parent closes our stdin (it ended, or it was killed).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def main() -> None:
    ca_file, cert_file, key_file = (Path(arg) for arg in sys.argv[1:4])
    import uvloop

    uvloop.run(serve(FakeCa(ca_file, cert_file, key_file)))


if __name__ == "__main__":
    main()
