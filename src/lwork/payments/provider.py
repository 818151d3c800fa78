"""What every payment provider does for us, and what a verified notification tells us.

A provider turns an order into what the app's payment SDK needs (signed by the server, never a
key), and turns a notification's raw bytes into a :class:`Notice` only once its signature and
fields are verified; it asks the provider about an order it heard nothing of (reconciliation)
and gives money back (refunds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order as a provider is asked to open it."""

    payid: str
    money_fen: int
    subject: str
    """What the buyer sees on the provider's page (the product id)."""
    expires_at: float


@dataclass(frozen=True, slots=True)
class Notice:
    """A verified notification: the provider says this about this order."""

    payid: str
    trade_no: str
    """The provider's own number for the payment: the ledger row's reference."""
    money_fen: int
    event: Literal["paid", "closed", "pending"]
    """``pending``: the buyer has not paid yet (nothing changes). Money given back is a
    :class:`RefundNotice`, never a Notice: settling one as a payment would credit it."""
    mismatch: str | None = None
    """A field the provider checks that names another app or merchant: the order is flagged."""


@dataclass(frozen=True, slots=True)
class RefundNotice:
    """A verified notice that a provider gave money of a paid order back, or failed to."""

    payid: str
    """The order ("" when only ``trade_no`` names it)."""
    trade_no: str
    """The payment's trade number, which finds the order when ``payid`` is empty."""
    refund_nos: tuple[str, ...]
    """The numbers naming this refund (ours, ``out_refund_no``/``out_biz_no``, and the
    provider's own): a refund already recorded under any of them changes nothing."""
    money_fen: int
    """What this refund gives back; 0: the whole price."""
    cumulative: bool = False
    """``money_fen`` is everything refunded so far (Alipay's ``refund_fee``), not this
    refund's own share: the share is what exceeds what was taken back before."""
    succeeded: bool = True
    """False: the refund failed or was closed (WeChat's ``REFUND.ABNORMAL``/``CLOSED``): the
    credit stays and a refund of ours waiting for it is marked failed."""


class NotVerified(Exception):
    """A notification that cannot be believed (bad signature, malformed, wrong shape)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Ack:
    """The provider's own way of hearing "accepted" or "send it again"."""

    status: int
    body: bytes
    media_type: str = "text/plain"


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """Give back ``money_fen`` of a paid order."""

    payid: str
    trade_no: str
    refund_no: str
    """Our own unique number for this refund: the provider's idempotency key, so a retried
    request never refunds twice."""
    money_fen: int
    total_fen: int
    """What the order was paid in all (WeChat asks for both)."""
    reason: str


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund_no: str
    provider_refund_no: str
    """The provider's own number for the refund ("" if it gives none)."""
    money_fen: int
    state: Literal["done", "pending", "failed"]
    """``pending``: accepted, the money moves later (WeChat); ``failed``: refused, with
    ``reason``."""
    reason: str = ""


class NotSupported(Exception):
    """The provider has no such operation (an App Store refund is the buyer's, through Apple)."""


class ProviderUnavailable(Exception):
    """The provider could not be asked (network, 5xx, a reply we cannot verify): try later."""


class Provider(Protocol):
    name: str

    async def create(self, order: NewOrder) -> dict[str, Any]:
        """The fields ``get_payid`` adds for the app's payment SDK."""
        ...

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Notice | RefundNotice:
        """The notification's meaning; NotVerified when it cannot be believed."""
        ...

    async def query(self, payid: str) -> Notice | None:
        """What the provider knows of the order now (verified like a notification); ``None``
        when it has never heard of it. ProviderUnavailable when it cannot be asked."""
        ...

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Ask the provider to give money back; NotSupported, or ProviderUnavailable."""
        ...

    async def refund_state(self, payid: str, refund_no: str) -> RefundResult | None:
        """What the provider says now of refund ``refund_no`` of order ``payid``: one it
        accepted and had not finished (WeChat's PROCESSING), for when its notice is lost, or one
        whose answer never came back (Alipay); ``None`` when it knows no such refund.
        NotSupported where a refund cannot be asked about; ProviderUnavailable."""
        ...

    def accepted(self) -> Ack: ...

    def refused(self, status: int) -> Ack:
        """Not accepted: the provider sends it again (``status``: 4xx for what we refused)."""
        ...
