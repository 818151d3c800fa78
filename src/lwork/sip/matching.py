"""Transaction identity: which transaction a message belongs to (RFC 3261 17.1.3, 17.2.3)."""

from dataclasses import dataclass

from lwork.sip.message import SipRequest, SipResponse
from lwork.sip.uri import format_host_port


@dataclass(frozen=True, slots=True)
class TransactionKey:
    """Top-Via branch and method; server keys also carry the Via sent-by.

    An ACK matches the INVITE transaction it acknowledges, so its key uses method INVITE.
    A CANCEL has the branch of the INVITE but is a transaction of its own (method CANCEL).
    """

    branch: str
    method: str
    sent_by: str = ""


def _method_for_matching(method: str) -> str:
    return "INVITE" if method == "ACK" else method


def client_key(message: SipRequest | SipResponse) -> TransactionKey:
    """Key of a client transaction: from the request we send or a response we receive."""
    branch = message.top_via.branch
    if not branch:
        raise ValueError("top Via has no branch")
    return TransactionKey(branch, _method_for_matching(message.cseq.method))


def server_key(message: SipRequest | SipResponse) -> TransactionKey:
    """Key of a server transaction: from the request we receive or a response we send."""
    via = message.top_via
    if not via.branch:
        raise ValueError("top Via has no branch (RFC 2543 peers are not supported)")
    host, port = via.sent_by
    return TransactionKey(
        via.branch, _method_for_matching(message.cseq.method), format_host_port(host, port)
    )
