"""Events the SIP engines report to their user: small frozen facts, handled with ``match``."""

from dataclasses import dataclass

from lwork.sip.matching import TransactionKey
from lwork.sip.message import SipRequest, SipResponse


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request opened server transaction ``key``; the TU must answer it."""

    key: TransactionKey
    request: SipRequest


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """Client transaction ``key`` got a response that its user must see."""

    key: TransactionKey
    response: SipResponse


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK for a 2xx: it belongs to the dialog, not to any transaction (RFC 3261 17.2.3)."""

    request: SipRequest


@dataclass(frozen=True, slots=True)
class StrayResponseReceived:
    """A response that matched no transaction, e.g. a late 2xx retransmission to re-ACK."""

    response: SipResponse


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B, F or H fired: the peer never answered (or never acknowledged)."""

    key: TransactionKey
    timer: str


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """Transaction ``key`` is gone; later messages for it no longer match."""

    key: TransactionKey


SipEvent = (
    RequestReceived
    | ResponseReceived
    | AckReceived
    | StrayResponseReceived
    | TransactionTimedOut
    | TransactionTerminated
)
