"""``POST /lwork/pay/notify/<provider>``: server-to-server notifications, on their own
endpoint because the providers sign the exact bytes (and Alipay posts a form, not JSON), and
each expects its own acknowledgement rather than the mobile API's JSON."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lwork.payments.service import PaymentService

log = logging.getLogger("lwork.payments")


_ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
"""Every method reaches the endpoint, which answers all but POST with the contract's 405."""


class _TooLarge(Exception):
    pass


def notify_routes(payments: PaymentService, body_limit: int) -> list[BaseRoute]:
    """One route per enabled provider; a disabled provider's path stays ``not_found``."""
    routes: list[BaseRoute] = []
    for pay_type in payments.providers:
        endpoint = _endpoint(payments, pay_type, body_limit)
        paths = [f"/lwork/pay/notify/{pay_type}"]
        if pay_type == "alipay":  # where the original's apps told Alipay to notify
            paths += ["/lwork/mobile/paytest", "/lwork/mobile1/paytest"]
        routes += [Route(path, endpoint, methods=_ANY_METHOD) for path in paths]
    return routes


def _endpoint(
    payments: PaymentService, pay_type: str, body_limit: int
) -> Callable[[Request], Awaitable[Response]]:
    async def notified(request: Request) -> Response:
        if request.method != "POST":
            return JSONResponse({"status": "failed", "reason": "method_not_allowed"}, 405,
                                headers={"Allow": "POST"})  # fmt: skip
        try:
            body = await _read(request, body_limit)
            ack = await payments.notified(pay_type, body, request.headers)
        except _TooLarge:
            log.warning("%s notification refused: body over %d bytes", pay_type, body_limit)
            return Response(b"failure", 413, media_type="text/plain")
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception:
            # The provider retries a notification it did not see acknowledged: nothing lost.
            log.exception("%s notification failed", pay_type)
            return Response(b"failure", 503, media_type="text/plain")
        return Response(ack.body, ack.status, media_type=ack.media_type)

    return notified


async def _read(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
