"""The App Store: the app buys with StoreKit 2 and posts the signed transaction to
``pay/apple``; App Store Server Notifications V2 tell of refunds. Both are JWS verified up to
the configured root (``apple_jws``), then checked against our bundle id and environment.

There is no order string to sign and no server API to refund through: ``create`` names the
App Store product, and a refund is the buyer's, through Apple, which then notifies us.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lwork.payments.apple_jws import Chains, Unverified, load_roots, verified_payload
from lwork.payments.orders import token_of_payid
from lwork.payments.products import Catalogue
from lwork.payments.provider import (
    Ack,
    NewOrder,
    Notice,
    NotSupported,
    NotVerified,
    RefundNotice,
    RefundRequest,
    RefundResult,
)
from lwork.settings.payments import AppleSettings


@dataclass(frozen=True, slots=True)
class AppleTransaction:
    transaction_id: str
    product_id: str
    price_milli: int | None
    """The price in thousandths of ``currency`` (StoreKit 2 since iOS 16), if given."""
    currency: str | None
    account_token: uuid.UUID | None
    """The ``appAccountToken`` the app bought with (``get_payid``'s ``app_account_token``)."""


class AppleProvider:
    name = "apple"

    def __init__(
        self, settings: AppleSettings, catalogue: Catalogue, wall: Callable[[], float]
    ) -> None:
        self._settings = settings
        self._catalogue = catalogue
        self._wall = wall
        self._chains = Chains(load_roots(settings.root_certificates))

    def _payload(self, token: object) -> Any:
        now = dt.datetime.fromtimestamp(self._wall(), dt.UTC)
        if not isinstance(token, str):
            raise Unverified("signed data is not a string")
        return verified_payload(token, self._chains, now)

    def transaction(self, signed: object) -> AppleTransaction:
        """A StoreKit 2 signed transaction, verified and ours; Unverified otherwise."""
        payload = self._payload(signed)
        if not isinstance(payload, dict):
            raise Unverified("the transaction is not an object")
        if payload.get("bundleId") != self._settings.bundle_id:
            raise Unverified(f"bundleId {str(payload.get('bundleId'))[:64]!r} is not ours")
        if payload.get("environment") != self._settings.environment:
            raise Unverified(f"environment {str(payload.get('environment'))[:16]!r}")
        transaction_id, product_id = payload.get("transactionId"), payload.get("productId")
        if not (isinstance(transaction_id, str) and 0 < len(transaction_id) <= 64
                and isinstance(product_id, str) and 0 < len(product_id) <= 64):  # fmt: skip
            raise Unverified("transactionId or productId missing")
        price, currency = payload.get("price"), payload.get("currency")
        return AppleTransaction(
            transaction_id, product_id,
            price if isinstance(price, int) and not isinstance(price, bool) else None,
            currency if isinstance(currency, str) else None,
            _account_token(payload.get("appAccountToken")),
        )  # fmt: skip

    async def create(self, order: NewOrder) -> dict[str, Any]:
        extra = {"apple_product_id": self._catalogue.apple_product_id(order.subject)}
        token = token_of_payid(order.payid)
        if token is not None:  # the app passes it to StoreKit as the purchase's appAccountToken
            extra["app_account_token"] = str(token)
        return extra

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Notice | RefundNotice:
        """A ``REFUND`` is a refund notice for its transaction; anything else is
        ``pending`` here (``PaymentService`` reads ``notification`` itself, and credits a
        ``ONE_TIME_CHARGE`` against its order as the app's own post is)."""
        kind, transaction = self.notification(body)
        if transaction is not None and kind == "REFUND":
            number = transaction.transaction_id
            return RefundNotice("", number, (number,), 0)
        return Notice("", "", 0, "pending")

    def notification(self, body: bytes) -> tuple[str, AppleTransaction | None]:
        """An App Store Server Notification V2, verified and ours: its type and transaction
        (None for types without one, e.g. ``TEST``); NotVerified otherwise."""
        try:
            outer = json.loads(body)
            payload = self._payload(outer.get("signedPayload") if isinstance(outer, dict) else None)
            data = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(data, dict):
                raise Unverified("notification without data")
            if data.get("bundleId") != self._settings.bundle_id:
                raise Unverified("the notification is for another app")
            if data.get("environment") != self._settings.environment:
                raise Unverified("the notification is for the other environment")
            signed = data.get("signedTransactionInfo")
            kind = payload.get("notificationType")
            kind = kind[:64] if isinstance(kind, str) else ""
            return kind, None if signed is None else self.transaction(signed)
        except Unverified as exc:
            raise NotVerified(str(exc)) from exc
        except (ValueError, RecursionError) as exc:
            raise NotVerified("notification is not JSON") from exc

    async def query(self, payid: str) -> Notice | None:
        # The App Store has no order of ours to look up (only transactions by their id, through
        # the App Store Server API, which we do not use): the app posts its transaction, and
        # reconciliation only expires what was never paid.
        raise NotSupported("the App Store has no order to ask about")

    async def refund(self, request: RefundRequest) -> RefundResult:
        raise NotSupported("App Store refunds are the buyer's, through Apple")

    async def refund_state(self, payid: str, refund_no: str) -> RefundResult | None:
        raise NotSupported("refunds here are done or refused when asked, never left pending")

    def accepted(self) -> Ack:
        return Ack(200, b"")

    def refused(self, status: int) -> Ack:
        return Ack(status, b"")


def _account_token(value: object) -> uuid.UUID | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= 64:
        with contextlib.suppress(ValueError):
            return uuid.UUID(value)
    raise Unverified("appAccountToken is not a UUID")
