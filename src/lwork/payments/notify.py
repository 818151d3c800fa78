"""``POST /lwork/pay/notify/<provider>``: server-to-server notifications, on their own
endpoint because the providers sign the exact bytes (and Alipay posts a form, not JSON), and
each expects its own acknowledgement rather than the mobile API's JSON."""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from lwork.http.server import Endpoint
from lwork.payments.service import PaymentService

log = logging.getLogger("lwork.payments")


class _TooLarge(Exception):
    pass


def notify_endpoints(payments: PaymentService, body_limit: int) -> dict[str, Endpoint]:
    """Path → endpoint, one per enabled provider (every method reaches it, and it answers all
    but POST with the contract's 405); a disabled provider's path stays ``not_found``."""
    endpoints: dict[str, Endpoint] = {}
    for pay_type in payments.providers:
        endpoint = _endpoint(payments, pay_type, body_limit)
        paths = [f"/lwork/pay/notify/{pay_type}"]
        if pay_type == "alipay":  # where the original's apps told Alipay to notify
            paths += ["/lwork/mobile/paytest", "/lwork/mobile1/paytest"]
        endpoints |= dict.fromkeys(paths, endpoint)
    return endpoints


def _endpoint(payments: PaymentService, pay_type: str, body_limit: int) -> Endpoint:
    provider = payments.providers[pay_type]

    def refused(status: int) -> Response:
        # In the provider's own form (WeChat: {"code":"FAIL",...}), which it reads as "not
        # accepted, send it again".
        ack = provider.refused(status)
        return Response(ack.body, status, media_type=ack.media_type)

    async def notified(request: Request) -> Response:
        if request.method != "POST":
            return JSONResponse({"status": "failed", "reason": "method_not_allowed"}, 405,
                                headers={"Allow": "POST"})  # fmt: skip
        try:
            body = await _read(request, body_limit)
            ack = await payments.notified(pay_type, body, request.headers)
        except _TooLarge:
            log.warning("%s notification refused: body over %d bytes", pay_type, body_limit)
            return refused(413)
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception:
            # The provider retries a notification it did not see acknowledged: nothing lost.
            log.exception("%s notification failed", pay_type)
            return refused(503)
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
