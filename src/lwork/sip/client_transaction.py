"""Client transactions: INVITE (RFC 3261 17.1.1, with RFC 6026) and non-INVITE (17.1.2).

Theory of operation. ``send_request(now)`` sends the request once and arms the timers; on an
unreliable transport the retransmission timer (A or E) re-sends it with exponential back-off.
``receive_response(response, now)`` moves the machine and reports the response with a
ResponseReceived event unless it is a retransmission the machine absorbs. A timeout timer (B
or F) ends the transaction with TransactionTimedOut. Every path ends in TransactionTerminated.

INVITE:      Calling --1xx--> Proceeding --2xx--> Accepted --M--> Terminated
             Calling/Proceeding --300-699 (send ACK)--> Completed --D--> Terminated
non-INVITE:  Trying --1xx--> Proceeding --final--> Completed --K--> Terminated
"""

from lwork.sip.events import ResponseReceived
from lwork.sip.headers import CSeq, Headers
from lwork.sip.matching import client_key
from lwork.sip.message import SipRequest, SipResponse
from lwork.sip.transaction import DEFAULT_TIMERS, Address, TimerSettings, Transaction
from lwork.sip.transaction import TransactionState as State


class ClientTransaction(Transaction):
    """Base of both client transactions: owns the request and its retransmission interval."""

    def __init__(
        self,
        request: SipRequest,
        peer: Address,
        *,
        reliable: bool,
        timers: TimerSettings = DEFAULT_TIMERS,
    ) -> None:
        super().__init__(client_key(request), peer, reliable=reliable, timers=timers)
        self.request = request
        self._interval = timers.t1

    def send_request(self, now: float) -> None:
        raise NotImplementedError

    def receive_response(self, response: SipResponse, now: float) -> None:
        raise NotImplementedError


class InviteClientTransaction(ClientTransaction):
    """Client side of an INVITE; builds and sends the ACK for a non-2xx final response."""

    def send_request(self, now: float) -> None:
        self._require(State.INITIAL)
        self.state = State.CALLING
        self._send(self.request)
        if not self.reliable:
            self._arm("A", now + self._interval)
        self._arm("B", now + 64 * self.timers.t1)

    def receive_response(self, response: SipResponse, now: float) -> None:
        code = response.status_code
        if self.state in (State.CALLING, State.PROCEEDING):
            self._cancel("A", "B")
            if code < 200:
                self.state = State.PROCEEDING
            elif code < 300:
                self.state = State.ACCEPTED
                self._arm("M", now + 64 * self.timers.t1)
            else:
                self.state = State.COMPLETED
                self._send(self.build_ack(response))
            self._emit(ResponseReceived(self.key, response))
            if self.state is State.COMPLETED:
                self._wait_then_terminate("D", 0 if self.reliable else self.timers.timer_d, now)
        elif self.state is State.ACCEPTED and 200 <= code < 300:
            # Forked or retransmitted 2xx: the TU must ACK each one itself.
            self._emit(ResponseReceived(self.key, response))
        elif self.state is State.COMPLETED and code >= 300:
            self._send(self.build_ack(response))

    def build_ack(self, response: SipResponse) -> SipRequest:
        """ACK for a non-2xx final response, part of this transaction (RFC 3261 17.1.1.3)."""
        original = self.request
        headers = Headers([("Via", str(original.top_via))])
        for route in original.headers.get_all("Route"):
            headers.add("Route", route)
        headers.add("Max-Forwards", original.headers.get("Max-Forwards") or "70")
        headers.add("From", original.headers.get("From") or "")
        headers.add("To", response.headers.get("To") or "")
        headers.add("Call-ID", original.call_id)
        headers.add("CSeq", str(CSeq(original.cseq.seq, "ACK")))
        headers.add("Content-Length", "0")
        return SipRequest(method="ACK", uri=original.uri, headers=headers)

    def _on_timer(self, name: str, now: float) -> None:
        if name == "A" and self.state is State.CALLING:
            self._send(self.request)
            self._interval *= 2  # INVITE back-off is not capped by T2
            self._arm("A", now + self._interval)
        elif name == "B" and self.state is State.CALLING:
            self._time_out("B")
        elif name in ("D", "M"):
            self._terminate()


class NonInviteClientTransaction(ClientTransaction):
    """Client side of any request but INVITE and ACK."""

    def send_request(self, now: float) -> None:
        self._require(State.INITIAL)
        self.state = State.TRYING
        self._send(self.request)
        if not self.reliable:
            self._arm("E", now + self._interval)
        self._arm("F", now + 64 * self.timers.t1)

    def receive_response(self, response: SipResponse, now: float) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return  # Completed absorbs retransmitted finals
        if response.status_code < 200:
            self.state = State.PROCEEDING
            self._emit(ResponseReceived(self.key, response))
            return
        self.state = State.COMPLETED
        self._cancel("E", "F")
        self._emit(ResponseReceived(self.key, response))
        self._wait_then_terminate("K", 0 if self.reliable else self.timers.t4, now)

    def _on_timer(self, name: str, now: float) -> None:
        if name == "E" and self.state in (State.TRYING, State.PROCEEDING):
            self._send(self.request)
            if self.state is State.TRYING:
                self._interval = min(2 * self._interval, self.timers.t2)
            else:
                self._interval = self.timers.t2
            self._arm("E", now + self._interval)
        elif name == "F" and self.state in (State.TRYING, State.PROCEEDING):
            self._time_out("F")
        elif name == "K":
            self._terminate()
