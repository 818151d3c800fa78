"""An administrator's refund of a paid order, from its row on the orders page: through the
payments' refunds service (the provider gives the money back, the credit is taken back, once
per order however often it is asked), with a row in the audit trail, refusals included."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from lwork.admin import action_forms
from lwork.admin.cdr_filter import FilterError
from lwork.admin.gate import Refused, read_form
from lwork.admin.orders import OrderPages, parse_orders_filter
from lwork.admin.pages import SECURITY_HEADERS
from lwork.admin.web import Console
from lwork.billing.rating import coins_value
from lwork.payments.refunds import RefundRefused
from lwork.payments.service import PaymentService

_STATUS = {"unknown_payid": 404, "provider_unavailable": 503}
"""The page's status for a refused refund; 409 for the rest (not paid, refused, …)."""


class OrderRefunds:
    def __init__(self, console: Console, pages: OrderPages, payments: PaymentService) -> None:
        self.console = console
        self.pages = pages
        self.payments = payments

    def routes(self) -> list[Route]:
        return [Route("/orders/refund", self.console.guarded(self.refund), methods=["POST"])]

    async def refund(self, request: Request) -> Response:
        form = await read_form(request)
        gate = self.console.gate
        asked: dict[str, object] = {"payid": form.get("payid", "")[:64]}
        try:
            visitor = await gate.changer(request, form)
        except Refused:
            who = await gate.visitor(request)
            await self.console.record(who, "refund", asked, "forbidden")
            raise
        # The filter the operator was looking at, to come back to (checked like a query).
        back = dict(parse_qsl(form.get("back", "")[:2000]))
        try:
            wanted = parse_orders_filter(back, self.pages.today())
        except FilterError:
            back, wanted = {}, parse_orders_filter({}, self.pages.today())
        try:
            asked_for = action_forms.refund(form)
        except action_forms.FormError as exc:
            await self.console.record(visitor, "refund", {**asked, "detail": str(exc)},
                                      "invalid_params")  # fmt: skip
            text = f"{gate.translate(request, 'bad_input')}: {exc}"
            return await self.pages.show(request, visitor, back, 400, problem=text)
        fields: dict[str, object] = {
            # The trail finds a refund by its account (the audit page's filter) too.
            "account": await self.pages.owner(asked_for.payid),
            "payid": asked_for.payid, "reason": asked_for.reason,
            "money": None if asked_for.money_fen is None else coins_value(asked_for.money_fen),
        }  # fmt: skip
        try:
            done = await self.payments.refund(asked_for.payid, asked_for.money_fen,
                                              asked_for.reason)  # fmt: skip
        except RefundRefused as exc:
            await self.console.record(visitor, "refund", {**fields, "detail": exc.detail or None},
                                      exc.reason)  # fmt: skip
            text = f"{gate.translate(request, 'refund_refused')}: {exc.reason}"
            status = _STATUS.get(exc.reason, 409)
            return await self.pages.show(request, visitor, back, status, problem=text)
        await self.console.record(visitor, "refund", {**fields, **done.answer()}, "ok")
        target = "/admin/orders?" + wanted.query(done="refunded", payid=done.payid)
        return RedirectResponse(target, 303, SECURITY_HEADERS)
