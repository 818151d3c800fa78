"""``POST /lwork/pay/notify/<provider>``: server-to-server notifications, on their own
endpoint because the providers sign the exact bytes (and Alipay posts a form, not JSON), and
each expects its own acknowledgement rather than the mobile API's JSON."""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from lwork.http.server import Endpoint
from lwork.payments.provider import Ack
from lwork.payments.service import PaymentService

log = logging.getLogger("lwork.payments")


class _TooLarge(Exception):
    pass


_ANSWERS_KEPT = 16
"""Distinct acknowledgements an endpoint keeps built (a provider has two or three)."""


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

    # The answers are the provider's few fixed acknowledgements: each is built once and sent
    # as it is (a Response only sends what it holds), not built again for every notification.
    answers: dict[Ack, Response] = {}

    def answer(ack: Ack) -> Response:
        response = answers.get(ack)
        if response is None:
            response = Response(ack.body, ack.status, media_type=ack.media_type)
            if len(answers) < _ANSWERS_KEPT:
                answers[ack] = response
        return response

    def refused(status: int) -> Response:
        # In the provider's own form (WeChat: {"code":"FAIL",...}), which it reads as "not
        # accepted, send it again".
        return answer(provider.refused(status))

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
        return answer(ack)

    return notified


async def _read(request: Request, limit: int) -> bytes:
    """The body, from the server's messages as they come: a notification's is one message,
    which Starlette's ``stream()`` (an async generator, and an empty chunk after the last)
    passed on at several times the cost."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
