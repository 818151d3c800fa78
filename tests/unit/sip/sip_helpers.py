"""Builders for test messages and a lossy in-memory link between two transaction layers."""

from lwork.sip.builders import create_request
from lwork.sip.headers import NameAddr, Via
from lwork.sip.ids import new_branch
from lwork.sip.message import SipRequest, SipResponse, parse_message
from lwork.sip.transaction_layer import TransactionLayer
from lwork.sip.uri import SipUri

UAC_ADDRESS = ("198.51.100.7", 5060)
UAS_ADDRESS = ("203.0.113.10", 5060)


def make_request(method: str, *, branch: str | None = None, cseq: int = 1) -> SipRequest:
    return create_request(
        method,
        SipUri.parse("sip:8613800138000@203.0.113.10"),
        via=Via("UDP", UAC_ADDRESS[0], UAC_ADDRESS[1], (("branch", branch or new_branch()),)),
        from_addr=NameAddr.parse("<sip:862150001234@198.51.100.7>;tag=uac1"),
        to_addr=NameAddr.parse("<sip:8613800138000@203.0.113.10>"),
        call_id="call-1@198.51.100.7",
        cseq=cseq,
        contact=NameAddr.parse("<sip:862150001234@198.51.100.7:5060>"),
    )


class LossyLink:
    """Carries messages between two layers as bytes; drops the n-th message of a direction.

    Messages go through serialisation and parsing, so the link also checks that everything
    the engines emit is valid on the wire.
    """

    def __init__(self, client: TransactionLayer, server: TransactionLayer) -> None:
        self.client = client
        self.server = server
        self.drop_to_server: set[int] = set()
        self.drop_to_client: set[int] = set()
        self.sent_to_server: list[SipRequest | SipResponse] = []
        self.sent_to_client: list[SipRequest | SipResponse] = []

    def transfer(self, now: float) -> None:
        """Deliver everything both sides have queued, until neither has anything left."""
        while True:
            to_server = [out.message for out in self.client.messages_to_send()]
            to_client = [out.message for out in self.server.messages_to_send()]
            if not to_server and not to_client:
                return
            for message in to_server:
                index = len(self.sent_to_server)
                self.sent_to_server.append(message)
                if index not in self.drop_to_server:
                    wire = parse_message(bytes(message))
                    assert isinstance(wire, SipRequest)
                    self.server.receive_request(wire, UAC_ADDRESS, reliable=False, now=now)
            for message in to_client:
                index = len(self.sent_to_client)
                self.sent_to_client.append(message)
                if index not in self.drop_to_client:
                    wire = parse_message(bytes(message))
                    assert isinstance(wire, SipResponse)
                    self.client.receive_response(wire, now)

    def run_until(self, end: float) -> float:
        """Fire both layers' timers in time order up to ``end``; returns the last time used."""
        now = 0.0
        while True:
            deadlines = [d for d in (self.client.get_timer(), self.server.get_timer()) if d]
            if not deadlines or min(deadlines) > end:
                return now
            now = min(deadlines)
            self.client.handle_timer(now)
            self.server.handle_timer(now)
            self.transfer(now)
